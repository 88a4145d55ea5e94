"""Stuudium ID, the identity provider. Its packages are layers, each importing only those below
it (import-linter checks it, `make lint`): views/ and admin/ (what people and schools call),
dispatch/ (sending what the outbox holds), eid/, oidc/ (the protocol), tenants/ (schools and
their clients), people/ (accounts, credentials, linking, sync), sso/ (sessions, sign-in,
logout), outbox/ (durable message queues), store/ (short-lived state in Redis); below them
models, config and metrics. create_app (idp.app) builds the Flask application."""

from idp.app import create_app

__all__ = ["create_app"]
