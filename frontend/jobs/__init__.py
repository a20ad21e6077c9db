"""The job: its record, the job store (all SQL on the jobs table), its names and its files. The lowest layer of
the API: every domain may use it; it uses none of them."""
