"""Report text and payloads of a chosen length, the same on every run.

Content does not change what is measured (it is sealed, so the server sees random bytes),
only its length does; the words are plain English ones so a typed-in report is as long, in
characters, as a real one of that many words (about six characters a word, space included).
"""

from __future__ import annotations

from typing import Any

_PHRASE = (
    "the soldier came to our house at night and said he would bring food for my "
    "children if I went with him to the camp near the river where the other girls "
    "were taken in a white vehicle after the market on Tuesday when nobody was watching"
)
_WORDS = _PHRASE.split()


def report_text(words: int) -> str:
    """`words` words, deterministic; the stride keeps it from repeating one phrase."""
    return " ".join(_WORDS[(i * 7) % len(_WORDS)] for i in range(words))


def report_payload(words: int, language: str = "en") -> dict[str, Any]:
    """A payload like the form's, with the account and the usual short answers filled in."""
    return {
        "schema": 1, "language": language, "what": report_text(words),
        "reporter": "self", "minor": "no", "age_range": "18-24",
        "when_date": "2025-03-14", "country": "Central African Republic", "place": "Bria",
        "perpetrator": "soldier", "perpetrator_nationality": "unknown",
        "danger_now": "no", "help": ["medical", "counselling"],
        "consent_contact": True, "contact_how": "through the focal point in the village",
        "consent_refer": True, "consent_share": False, "consent_statistics": True,
    }
