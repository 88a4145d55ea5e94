"""IdP persistence: schools, clients, persons, accounts, sessions, keys, tokens, outbox, audit."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shared.db import Base, TZDateTime, utcnow

__all__ = ["TZDateTime", "utcnow"]  # with the models: every module and migration reads them here


class School(Base):
    """A tenant: one school (or hobby school, kindergarten) and its e-diary instance."""

    __tablename__ = "school"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    base_url: Mapped[str] = mapped_column(String(500))
    logo: Mapped[str | None] = mapped_column(Text)
    default_locale: Mapped[str] = mapped_column(String(8), default="et")
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[dt.datetime] = mapped_column(TZDateTime(), default=utcnow)


class Client(Base):
    """An OIDC relying party; every school has one, and may trust others."""

    __tablename__ = "client"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("school.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    secret_hash: Mapped[str | None] = mapped_column(String(64))
    token_endpoint_auth_method: Mapped[str] = mapped_column(String(32))
    redirect_uris: Mapped[list[str]] = mapped_column(JSON, default=list)
    post_logout_redirect_uris: Mapped[list[str]] = mapped_column(JSON, default=list)
    backchannel_logout_uri: Mapped[str | None] = mapped_column(String(500))
    frontchannel_logout_uri: Mapped[str | None] = mapped_column(String(500))
    events_uri: Mapped[str | None] = mapped_column(String(500))
    initiate_login_uri: Mapped[str | None] = mapped_column(String(500))
    id_token_signed_response_alg: Mapped[str] = mapped_column(String(8), default="RS256")
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[dt.datetime] = mapped_column(TZDateTime(), default=utcnow)

    school: Mapped[School] = relationship(lazy="joined")


class Person(Base):
    """One human: canonical personal data and the credentials."""

    __tablename__ = "person"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    given_name: Mapped[str] = mapped_column(String(200))
    family_name: Mapped[str] = mapped_column(String(200))
    isikukood: Mapped[str | None] = mapped_column(String(11))
    # Where the code came from (idp.people.proofing): "eid" (an eID login proved it), "school" (the
    # school recorded it) or "applicant" (typed in an application; never an anchor).
    isikukood_source: Mapped[str | None] = mapped_column(String(16))
    birth_date: Mapped[dt.date | None] = mapped_column(Date)
    email: Mapped[str | None] = mapped_column(String(320))
    email_verified: Mapped[bool] = mapped_column(default=False)
    phone: Mapped[str | None] = mapped_column(String(40))
    address: Mapped[dict[str, str] | None] = mapped_column(JSON)
    # The language the person chose (et, ru, en); None until they choose, so that pages follow
    # the browser's language and mail the language of the page that sent it.
    locale: Mapped[str | None] = mapped_column(String(8))
    version: Mapped[int] = mapped_column(BigInteger, default=0)
    password_hash: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(TZDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(TZDateTime(), default=utcnow)
    # Set when linking absorbed this person into another; kept because sessions refer to it.
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))

    accounts: Mapped[list[Account]] = relationship(back_populates="person")


class Account(Base):
    """A person's membership in one school, with roles and the sub only that school sees."""

    __tablename__ = "account"
    __table_args__ = (
        UniqueConstraint("person_id", "school_id", name="uq_account_person_school"),
        Index("ix_account_school_email", "school_id", "login_email"),
        Index(
            "uq_account_school_email_active",
            "school_id",
            "login_email",
            unique=True,
            postgresql_where=text("status = 'active'"),
            sqlite_where=text("status = 'active'"),
        ),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), index=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("school.id"))
    sub: Mapped[str] = mapped_column(String(64), unique=True)
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    # The login identifier at this school, lower-cased; kept equal to the person's e-mail.
    login_email: Mapped[str | None] = mapped_column(String(320))
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[dt.datetime] = mapped_column(TZDateTime(), default=utcnow)

    person: Mapped[Person] = relationship(back_populates="accounts")
    school: Mapped[School] = relationship()


class SsoSession(Base):
    """The durable record of an IdP single-sign-on session; Redis holds the hot copy."""

    __tablename__ = "sso_session"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the sid
    cookie_hash: Mapped[str] = mapped_column(String(64), unique=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), index=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("account.id"))
    auth_time: Mapped[dt.datetime] = mapped_column(TZDateTime())
    amr: Mapped[list[str]] = mapped_column(JSON, default=list)
    acr: Mapped[str] = mapped_column(String(32), default="low")
    user_agent: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[dt.datetime] = mapped_column(TZDateTime(), default=utcnow)
    last_seen: Mapped[dt.datetime] = mapped_column(TZDateTime(), default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(TZDateTime())
    ended_at: Mapped[dt.datetime | None] = mapped_column(TZDateTime())
    end_reason: Mapped[str | None] = mapped_column(String(32))


class SessionClient(Base):
    """A school client that received tokens under an SSO session, with that school's sub."""

    __tablename__ = "session_client"
    session_id: Mapped[str] = mapped_column(ForeignKey("sso_session.id"), primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("client.id"), primary_key=True)
    sub: Mapped[str] = mapped_column(String(64))
    first_at: Mapped[dt.datetime] = mapped_column(TZDateTime(), default=utcnow)

    client: Mapped[Client] = relationship(lazy="joined")


class SigningKey(Base):
    """A token-signing key; the private part encrypted under the key-encryption secrets."""

    __tablename__ = "signing_key"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kid: Mapped[str] = mapped_column(String(64), unique=True)
    alg: Mapped[str] = mapped_column(String(8))
    state: Mapped[str] = mapped_column(String(16))  # next, active, retiring, retired
    private_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(TZDateTime(), default=utcnow)
    activated_at: Mapped[dt.datetime | None] = mapped_column(TZDateTime())
    retiring_at: Mapped[dt.datetime | None] = mapped_column(TZDateTime())


class RefreshToken(Base):
    """An opaque refresh token, stored hashed, bound to a grant and an SSO session."""

    __tablename__ = "refresh_token"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    grant_id: Mapped[str] = mapped_column(String(64), index=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("client.id"))
    session_id: Mapped[str] = mapped_column(ForeignKey("sso_session.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id"))
    scope: Mapped[str] = mapped_column(String(500))
    claims: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(TZDateTime(), default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(TZDateTime())
    used_at: Mapped[dt.datetime | None] = mapped_column(TZDateTime())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(TZDateTime())


class Delivery(Base):
    """An outbox row: one message (logout or event) for one school client."""

    __tablename__ = "delivery"
    __table_args__ = (Index("ix_delivery_due", "state", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # logout, event
    client_id: Mapped[int] = mapped_column(ForeignKey("client.id"))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(TZDateTime(), default=utcnow)
    lease_until: Mapped[dt.datetime | None] = mapped_column(TZDateTime())
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = mapped_column(TZDateTime(), default=utcnow)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(TZDateTime())

    client: Mapped[Client] = relationship(lazy="joined")


class LinkAttempt(Base):
    """One run of the linking flow: bound to the initiator's SSO session, single-use, short."""

    __tablename__ = "link_attempt"
    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 of the id
    session_id: Mapped[str] = mapped_column(String(64))  # the initiator's sid
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), index=True)
    source_school_id: Mapped[int | None] = mapped_column(ForeignKey("school.id"))
    target_school_id: Mapped[int] = mapped_column(ForeignKey("school.id"))
    # The one-shot proof of the second login: the account at the target school.
    target_account_id: Mapped[int | None] = mapped_column(ForeignKey("account.id"))
    proven_at: Mapped[dt.datetime | None] = mapped_column(TZDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(TZDateTime(), default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(TZDateTime())
    used_at: Mapped[dt.datetime | None] = mapped_column(TZDateTime())


class Application(Base):
    """A parent's application for an account at a school (used by the parent-accounts flow)."""

    __tablename__ = "application"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("school.id"), index=True)
    email: Mapped[str] = mapped_column(String(320))
    child_isikukood: Mapped[str] = mapped_column(String(11))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # unconfirmed → confirmed (the address answered) → pending (submitted) → approved/rejected
    status: Mapped[str] = mapped_column(String(16), default="unconfirmed")
    created_at: Mapped[dt.datetime] = mapped_column(TZDateTime(), default=utcnow)
    decided_at: Mapped[dt.datetime | None] = mapped_column(TZDateTime())
    locale: Mapped[str] = mapped_column(String(8), default="et")
    confirmed_at: Mapped[dt.datetime | None] = mapped_column(TZDateTime())
    submitted_at: Mapped[dt.datetime | None] = mapped_column(TZDateTime())
    decided_by: Mapped[str | None] = mapped_column(String(64))  # the admin's sub
    reason: Mapped[str | None] = mapped_column(Text)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("account.id"))


class OneTimeLink(Base):
    """A link e-mailed to a person: only its SHA-256 is kept; single use, one purpose."""

    __tablename__ = "one_time_link"
    __table_args__ = (Index("ix_one_time_link_subject", "purpose", "subject"),)
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(16))  # access, welcome, confirm, email
    subject: Mapped[str] = mapped_column(String(64))  # "account:7", "application:3", "person:5"
    school_id: Mapped[int | None] = mapped_column(ForeignKey("school.id"))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The address the link was mailed to (lower-cased): a login or e-mail link is refused once
    # that is no longer the subject's login e-mail.
    sent_to: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[dt.datetime] = mapped_column(TZDateTime(), default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(TZDateTime())
    used_at: Mapped[dt.datetime | None] = mapped_column(TZDateTime())


class MailOutbox(Base):
    """A mail to send: the template and its context; a link in it is minted when it is sent,
    so no usable link ever rests in SQL."""

    __tablename__ = "mail_outbox"
    __table_args__ = (Index("ix_mail_outbox_due", "state", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # "mail": send as written; "access": mail a login link if the address has an account
    kind: Mapped[str] = mapped_column(String(16), default="mail")
    school_id: Mapped[int | None] = mapped_column(ForeignKey("school.id"))
    recipient: Mapped[str] = mapped_column(String(320))
    locale: Mapped[str] = mapped_column(String(8), default="et")
    template: Mapped[str] = mapped_column(String(64))
    context: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # pending, sent, dropped (an access request without an account), dead
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(TZDateTime(), default=utcnow)
    lease_until: Mapped[dt.datetime | None] = mapped_column(TZDateTime())
    last_error: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(TZDateTime(), default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(TZDateTime())


class AuditEvent(Base):
    """Who did what, when; never a password, token or personal code."""

    __tablename__ = "audit_event"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(TZDateTime(), default=utcnow, index=True)
    action: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str | None] = mapped_column(String(200))
    school_id: Mapped[int | None] = mapped_column(ForeignKey("school.id"))
    person_id: Mapped[int | None] = mapped_column(Integer)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class VersionCounter(Base):
    """The global person-version sequence: each insert draws the next version (both databases)."""

    __tablename__ = "version_counter"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
