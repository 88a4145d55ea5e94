"""Code both apps use: app setup, configuration, the database session and the transaction rule,
Redis connections, security headers and CSRF, languages, personal codes and names, mail, the
ops endpoints, an OIDC relying party's provider cache, and the wire formats both apps speak
(messages). Imports neither app (import-linter checks it)."""
