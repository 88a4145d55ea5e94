"""Sending mail over real SMTP (SMTP_URL: smtp://host:port, smtps://, or smtp+starttls://,
with user:password when the server wants them)."""

from __future__ import annotations

import re
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from urllib.parse import unquote, urlsplit

TIMEOUT_SECONDS = 10
# One address as people type it: no spaces, controls or list separators (which could add
# recipients or headers), one @, a dot in the domain.
_ADDRESS = re.compile(r"[^\s@<>,;:\"()\[\]\\]+@[^\s@<>,;:\"()\[\]\\]+\.[^\s@<>,;:\"()\[\]\\.]+")


def is_address(text: str) -> bool:
    """Tell whether text is one plausible e-mail address (at most 320 characters)."""
    return len(text) <= 320 and _ADDRESS.fullmatch(text) is not None


class MailError(Exception):
    """The server did not take the message (the sender retries later)."""


def compose(sender: str, recipient: str, subject: str, body: str, locale: str) -> EmailMessage:
    """A plain-text message in UTF-8, in the recipient's language."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = recipient
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2].rstrip(">") or None)
    msg["Content-Language"] = locale
    msg.set_content(body)
    return msg


def send(url: str, msg: EmailMessage) -> None:
    """Hand one message to the SMTP server in url; MailError when it is not taken."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps", "smtp+starttls") or not parts.hostname:
        raise MailError(f"SMTP_URL must be smtp://, smtps:// or smtp+starttls://, not {url!r}")
    port = parts.port or {"smtps": 465, "smtp+starttls": 587}.get(parts.scheme, 25)
    try:
        server: smtplib.SMTP
        if parts.scheme == "smtps":
            server = smtplib.SMTP_SSL(
                parts.hostname, port, timeout=TIMEOUT_SECONDS, context=ssl.create_default_context()
            )
        else:
            server = smtplib.SMTP(parts.hostname, port, timeout=TIMEOUT_SECONDS)
        with server:
            if parts.scheme == "smtp+starttls":
                server.starttls(context=ssl.create_default_context())
            if parts.username:
                server.login(unquote(parts.username), unquote(parts.password or ""))
            server.send_message(msg)
    except (OSError, smtplib.SMTPException) as exc:
        raise MailError(type(exc).__name__) from exc
