"""The OpenID Connect provider, protocol only: discovery and keys, authorization (PageError for
what a person must see, rendered by views/), the token endpoint's grants on Authlib (code with
PKCE, refresh rotation, client credentials), userinfo, revocation and introspection, ID-token
hints for RP-initiated logout, claims and scopes. It renders no page. Imports tenants (client
registrations), people, sso, store and below."""
