"""Redaction of secrets and normalization of free-form JSON before it enters an audit row.

Audit rows are kept seven years and read by auditors, so a password or token that reached one
would outlive every rotation. Everything free-form (request bodies, metadata, paths, error
messages) passes through here first.

Matching is deliberately broad: a key is secret-looking when, lower-cased and with separators
removed, it *contains* one of `SECRET_KEY_FRAGMENTS` ("newPassword", "X-Api-Key", "mfa_code",
"refresh_token" ...), or when one of its words is in `SECRET_KEY_WORDS` (short words such as
"pin" that would otherwise hit "mapping"). Over-redaction loses a little context; under-redaction
leaks a credential for seven years, so the list errs on the broad side (docs/audit.md).

The output is also JSON-safe for PostgreSQL JSONB and stable through its round trip: no NUL
characters or lone surrogates, no NaN/Infinity, string keys only, bounded depth and size.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlencode

REDACTED = "[REDACTED]"
TOO_DEEP = "[TRUNCATED: nested too deep]"

MAX_DEPTH = 32
MAX_STRING_CHARS = 4096
MAX_ITEMS = 1000  # per object or array; the rest is dropped and counted

# Contained anywhere in the separator-free, lower-cased key.
SECRET_KEY_FRAGMENTS: tuple[str, ...] = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "authorization",
    "credential",
    "apikey",
    "privatekey",
    "accesskey",
    "signature",
    "cookie",
    "session",
    "otp",
    "mfa",
    "recovery",
    "code",
    "key",
    "cvv",
    "cvc",
    "cardnumber",
    "salt",
)
# Whole words only (split on separators and camelCase), because as fragments they are too common.
SECRET_KEY_WORDS: frozenset[str] = frozenset({"pin", "pwd", "pan", "auth", "bearer", "jwt", "hash"})

# Values that are secrets whatever key they sit under.
_SECRET_VALUE_PATTERNS = (
    re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"),  # a JWT
)

_WORD_SPLIT = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])")
_SEPARATORS = re.compile(r"[^a-z0-9]+")


def is_secret_key(key: str) -> bool:
    lowered = key.lower()
    compact = _SEPARATORS.sub("", lowered)
    if any(fragment in compact for fragment in SECRET_KEY_FRAGMENTS):
        return True
    # Words by separators and by camelCase ("userPin"), and by separators alone ("PIN", "piN").
    words = {word.lower() for word in _WORD_SPLIT.split(key) if word}
    words.update(word for word in _SEPARATORS.split(lowered) if word)
    return not words.isdisjoint(SECRET_KEY_WORDS)


def redact(value: Any) -> Any:
    """A JSON-safe copy of `value` with every value under a secret-looking key replaced by REDACTED.

    Mappings are walked at any depth (inside lists too). Values that are not JSON types are
    turned into text (UUIDs, dates, Decimals keep a stable form) rather than refused: an audit
    write must not fail because a request carried something odd.
    """
    return _redact(value, 0)


def _redact(value: Any, depth: int) -> Any:
    if depth > MAX_DEPTH:
        return TOO_DEEP
    if isinstance(value, Mapping):
        result: dict[str, Any] = {}
        for index, (key, item) in enumerate(value.items()):
            if index >= MAX_ITEMS:
                result["_truncated_items"] = len(value) - MAX_ITEMS
                break
            text_key = clean_text(key if isinstance(key, str) else str(key))
            result[text_key] = REDACTED if is_secret_key(text_key) else _redact(item, depth + 1)
        return result
    if isinstance(value, (list, tuple, set, frozenset)):
        items = list(value)
        redacted = [_redact(item, depth + 1) for item in items[:MAX_ITEMS]]
        if len(items) > MAX_ITEMS:
            redacted.append(f"[TRUNCATED: {len(items) - MAX_ITEMS} more items]")
        return redacted
    return _scalar(value)


def _scalar(value: Any) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Decimal):
        return value if value.is_finite() else str(value)
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dt.datetime):
        return format_timestamp(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"[{len(value)} bytes]"
    return scrub_text(str(value))


def clean_text(text: str, max_chars: int = MAX_STRING_CHARS) -> str:
    """Text PostgreSQL accepts (no NUL, valid UTF-8), cut to `max_chars` with a visible marker."""
    cleaned = text.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")
    if len(cleaned) > max_chars:
        marker = f"...[TRUNCATED {len(cleaned) - max_chars} chars]"
        cleaned = cleaned[:max_chars] + marker
    return cleaned


def scrub_text(text: str, max_chars: int = MAX_STRING_CHARS) -> str:
    """clean_text, plus bearer credentials and JWTs replaced wherever they appear."""
    cleaned = clean_text(text, max_chars)
    for pattern in _SECRET_VALUE_PATTERNS:
        cleaned = pattern.sub(REDACTED, cleaned)
    return cleaned


# A path segment that is a signed token (`<base64url payload>.<base64url MAC>`, the app's download
# URLs, or a JWT): long base64url runs joined by dots. UUIDs and words never look like this.
_SIGNED_TOKEN_SEGMENT = re.compile(r"^[A-Za-z0-9_-]{16,}(\.[A-Za-z0-9_-]{16,})+\.?[A-Za-z0-9_-]*$")


def redact_path(path: str, max_chars: int = 2048, secret_values: tuple[str, ...] = ()) -> str:
    """A request path with its secrets redacted: the values of secret-looking query parameters
    (reset and invite links carry `?token=...`), path segments that are signed tokens (the
    download URL `/api/files/download/<token>`), and any segment equal to one of `secret_values`
    (the route's secret-looking path parameters, when the caller knows them)."""
    cleaned = scrub_text(path, max_chars)
    base, separator, query = cleaned.partition("?")
    base = "/".join(REDACTED if _SIGNED_TOKEN_SEGMENT.match(segment) or (segment and segment in secret_values)
                    else segment for segment in base.split("/"))
    cleaned = base + separator + query
    if not separator:
        return cleaned
    pairs = parse_qsl(query, keep_blank_values=True)
    safe = [(name, REDACTED if is_secret_key(name) else value) for name, value in pairs]
    return base + "?" + urlencode(safe, safe="[]")


def format_timestamp(moment: dt.datetime) -> str:
    """UTC with microseconds and a Z; a naive datetime is taken to be UTC already."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
