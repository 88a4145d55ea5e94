"""The OpenID Connect provider: protocol only; how a person proves who they are lives in views."""
