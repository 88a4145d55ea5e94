"""eID (ID-card, Mobile-ID, Smart-ID) through an upstream with TARA's profile: client speaks to
the upstream (PKCE, nonce, its ID-token quirks); binding maps an eID identity to a school
account by an anchored personal code and the same names (people.proofing). The pages are
views/eid. Imports oidc (assurance levels), people, sso and below; nothing in eid/ imports
views/."""
