"""The canonical encoding an audit row's HMAC is computed over.

The same row must encode to the same bytes when it is written (from Python values) and when it
is verified years later (from what PostgreSQL gives back), so every type has one fixed form:

- objects: keys sorted by code point, no whitespace anywhere;
- strings: JSON with `\\uXXXX` escapes for everything outside printable ASCII (byte-stable);
- numbers: plain decimal text with no exponent and no trailing zeros, integral values without a
  fraction. JSONB turns `1e+100` into `1000...0` and gives it back as an int; `100.0` comes back
  as the float 100.0. Encoding the *value* instead of the Python type keeps both stable;
- booleans `true`/`false`, None `null`;
- UUIDs lower-case hyphenated; timestamps UTC `YYYY-MM-DDTHH:MM:SS.ffffffZ` (naive = UTC);
  IP addresses in their compressed `ipaddress` form.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from reckai.domain.audit.redaction import format_timestamp


class NotCanonicalisable(TypeError):
    """A value with no canonical form reached the encoder (a programming error, not user input)."""

    def __init__(self, value: object) -> None:
        super().__init__(f"no canonical encoding for {type(value).__name__}")
        self.value_type = type(value).__name__


def canonical_json(value: Any) -> str:
    """The canonical text of a JSON-like value (see the module docstring)."""
    parts: list[str] = []
    _encode(value, parts)
    return "".join(parts)


def canonical_bytes(value: Any) -> bytes:
    return canonical_json(value).encode("ascii")


def canonical_number(number: float | Decimal) -> str:
    if isinstance(number, bool):
        raise NotCanonicalisable(number)
    if isinstance(number, int):
        return str(number)
    exact = Decimal(str(number)) if isinstance(number, float) else number
    if not exact.is_finite():
        raise NotCanonicalisable(number)
    if exact == exact.to_integral_value():
        return str(int(exact))
    text = format(exact.normalize(), "f")
    return text


def _encode(value: Any, parts: list[str]) -> None:
    if value is None:
        parts.append("null")
    elif value is True:
        parts.append("true")
    elif value is False:
        parts.append("false")
    elif isinstance(value, (int, float, Decimal)):
        parts.append(canonical_number(value))
    elif isinstance(value, str):
        parts.append(json.dumps(value, ensure_ascii=True))
    elif isinstance(value, uuid.UUID):
        parts.append(json.dumps(str(value)))
    elif isinstance(value, dt.datetime):
        parts.append(json.dumps(format_timestamp(value)))
    elif isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        parts.append(json.dumps(value.compressed))
    elif isinstance(value, Mapping):
        parts.append("{")
        for index, key in enumerate(sorted(value)):
            if not isinstance(key, str):
                raise NotCanonicalisable(key)
            if index:
                parts.append(",")
            parts.append(json.dumps(key, ensure_ascii=True))
            parts.append(":")
            _encode(value[key], parts)
        parts.append("}")
    elif isinstance(value, (list, tuple)):
        parts.append("[")
        for index, item in enumerate(value):
            if index:
                parts.append(",")
            _encode(item, parts)
        parts.append("]")
    else:
        raise NotCanonicalisable(value)
