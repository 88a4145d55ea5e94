"""A likely typo in the domain of a typed e-mail address ("mari@gmial.ee" → "mari@gmail.com"),
told from a short list of common mail domains only: it never depends on whether an account
exists."""

from __future__ import annotations

# Where parents' mail mostly is; any of these typed exactly is never "corrected".
COMMON = (
    "gmail.com",
    "hotmail.com",
    "outlook.com",
    "yahoo.com",
    "icloud.com",
    "live.com",
    "mail.ee",
    "hot.ee",
    "online.ee",
    "neti.ee",
    "suhtlus.ee",
    "mail.ru",
    "yandex.ru",
    "inbox.lv",
    "me.com",
    "msn.com",
    "mail.com",
    "gmx.com",
)
# A provider whose name alone (any ending) tells it: "gmial.ee" is Gmail.
BY_NAME = {"gmail": "gmail.com", "hotmail": "hotmail.com", "outlook": "outlook.com"}
BY_NAME |= {"yahoo": "yahoo.com", "icloud": "icloud.com", "online": "online.ee"}


def distance(a: str, b: str) -> int:
    """Edits (insert, delete, replace, swap of neighbours) from a to b (Damerau-Levenshtein,
    optimal string alignment)."""
    rows = [list(range(len(b) + 1))]
    for i, ca in enumerate(a, 1):
        row = [i]
        for j, cb in enumerate(b, 1):
            cost = min(rows[-1][j] + 1, row[j - 1] + 1, rows[-1][j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cost = min(cost, rows[-2][j - 2] + 1)
            row.append(cost)
        rows.append(row)
    return rows[-1][-1]


def likely_domain(domain: str) -> str | None:
    """The common domain a typed one is most likely a typo of, or None."""
    domain = domain.strip().lower().rstrip(".")
    if not domain or domain in COMMON:
        return None
    name = domain.split(".")[0]
    for known_name, known in BY_NAME.items():
        if distance(name, known_name) <= 1:
            return known
    limit = 1 if len(domain) < 8 else 2
    best, known = min((distance(domain, known), known) for known in COMMON)
    return known if best <= limit else None


def suggestion(email: str) -> str | None:
    """The address with its domain corrected, when the domain looks like a common one mistyped."""
    local, at, domain = email.strip().rpartition("@")
    if not at or not local:
        return None
    fixed = likely_domain(domain)
    return f"{local}@{fixed}" if fixed else None
