"""Single sign-on sessions: the session's SQL record and Redis hot copy (sessions), starting one
at sign-in and the jump to a school (signin), ending them — the one end_sessions that logout,
password change, disable, unlink and merge use, with their logout messages (logout) — and the
person's session list with device names. Imports outbox and store and below."""
