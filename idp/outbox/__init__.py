"""Durable queues of messages leaving the IdP: delivery rows (to schools) and mail rows (to
people) go in with the caller's transaction, the worker is woken on commit, rows are leased
(SKIP LOCKED) and retried with backoff; the outbound address guard checks where they may go.
What a message says and how it is sent is dispatch/'s, plugged in at app start. Imports models
and store only."""
