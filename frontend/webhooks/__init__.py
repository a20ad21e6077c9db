"""Signed webhooks: a generate request's ``webhook_url`` validated, its job's events POSTed (Standard Webhooks
signatures) from the job store's outbox by every replica, each attempt shown on the job's status."""
