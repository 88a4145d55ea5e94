"""People and their accounts: argon2id passwords and login by e-mail (accounts), the password
rules, password and e-mail change, one-time e-mailed links, identity proofing (which personal
codes identify a person), linking and unlinking accounts across schools, and sync (a person's
change queued as an event for every school). Imports sso (ending sessions), outbox and below."""
