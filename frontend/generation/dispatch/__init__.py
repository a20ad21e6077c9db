"""This replica's side of the queue: the local queue, workers, a job's lifecycle from claim to end, the journal
of its changes."""
