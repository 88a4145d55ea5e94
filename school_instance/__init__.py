"""The multi-tenant school e-diary, an OIDC client of Stuudium ID per school."""
