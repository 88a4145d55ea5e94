"""The tenant admin API (/api/admin/v1): a school's server, with its client-credentials token
and the acting account's sub, reads and corrects its people (version-checked), creates and
disables accounts, and decides applications; every call is audited. api holds the blueprint and
the acting account's check, people and applications its handlers, openapi the description.
Imports oidc (token checks, claims), people, sso and below; never views."""
