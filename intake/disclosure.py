"""The deployment's security contact as /.well-known/security.txt (RFC 9116).

A finder who sees something wrong with an instance (a leak, a misconfiguration) needs to
know whom to tell privately. The file is built from `[security]` in config.toml, so it
changes only when an administrator changes it; `intake doctor` says when it is about to
expire.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from intake.config import SecurityContact


def security_txt(contact: SecurityContact, languages: Iterable[str]) -> str:
    """The file's text. No Canonical line: the only address the app knows is the Host
    header, which the client chose, and an unsigned file gains nothing from it."""
    lines = [f"Contact: {uri}" for uri in contact.contacts]
    # The end of the day named, in UTC: the file is good through the date the admin wrote.
    lines.append(f"Expires: {contact.expires.isoformat()}T23:59:59Z")
    if contact.policy:
        lines.append(f"Policy: {contact.policy}")
    lines.append("Preferred-Languages: " + ", ".join(languages))
    return "\n".join(lines) + "\n"


def days_left(contact: SecurityContact, today: date) -> int:
    """Days until the file expires: 0 on its last day, negative once past."""
    return (contact.expires - today).days
