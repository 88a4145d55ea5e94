"""Every page a person sees on the IdP: login (password and eID), the login links and account
applications, the account pages (sessions, password, e-mail, unlink), linking, the language
switch, RP-initiated logout's pages and every error page. Views call the layers below and do
not commit on their own behalf beyond their service's unit (see shared/db.py)."""
