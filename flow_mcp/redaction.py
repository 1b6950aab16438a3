"""Blanking secrets in text: as given, or URL-encoded in any mix (an echoed query string or form body).

The FlowHunt client runs every string of every answer through a ``Redactor`` holding its key, and the log
processor every log value through one holding every secret. Scrub before cutting: a secret cut in two can no
longer be recognised, and its first half would travel on.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

REDACTED = "[redacted]"
MIN_SECRET_CHARS = 4  # shorter "secrets" would redact ordinary words


class Redactor:
    """Replaces each of ``secrets`` with ``[redacted]`` wherever it appears, plainly or URL-encoded."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        kept = sorted({s for s in secrets if len(s) >= MIN_SECRET_CHARS}, key=len, reverse=True)
        self._plain = kept
        self._encoded = re.compile("|".join(_any_encoding(s) for s in kept)) if kept else None

    def scrub(self, text: str) -> str:
        for secret in self._plain:
            if secret in text:
                text = text.replace(secret, REDACTED)
        # Only text with a '%' (or a '+' for a space) can hold an encoded form: the common case stays one scan.
        if self._encoded is not None and ("%" in text or "+" in text):
            text = self._encoded.sub(REDACTED, text)
        return text


def _any_encoding(secret: str) -> str:
    """A pattern matching ``secret`` with any of its characters percent-encoded (hex in either case)."""
    parts = []
    for char in secret:
        encoded = "".join(f"%{byte:02X}" for byte in char.encode("utf-8", "surrogatepass"))
        options = [re.escape(char), f"(?i:{re.escape(encoded)})"] + ([r"\+"] if char == " " else [])
        parts.append(f"(?:{'|'.join(options)})")
    return "".join(parts)
