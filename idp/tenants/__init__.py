"""Schools and their OIDC clients: registration (exact redirect URIs, outbound URIs checked by
the address guard, secrets stored as SHA-256), branding, moving a school's URL, disabling a
school (its part of every session ended), delivery statistics and the audit export for ops.
Imports people, sso, outbox and below."""
