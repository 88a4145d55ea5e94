"""Sending what the outbox holds: deliveries (back-channel logout tokens and person-changed
Security Event Tokens, signed per attempt, POSTed through the outbound address guard; the direct
attempt after a commit and the worker's retries) and mail (rendered in the recipient's language,
its one-time link minted when sent, SMTP). The app registers its senders with the outbox at
start, so the layers below queue without knowing how messages travel. Imports oidc (signing,
claims), people (accounts, one-time links), outbox and below."""
