"""Code both apps use: configuration, database, Redis, JOSE, security helpers."""
