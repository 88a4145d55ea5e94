"""eID login (ID-card, Mobile-ID, Smart-ID): the IdP as an OIDC client of TARA's profile."""
