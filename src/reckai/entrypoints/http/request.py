"""The app's request class: JSON bodies are refused (400 MALFORMED_BODY) when nested deeper than
`MAX_JSON_DEPTH` levels.

msgspec decodes recursively and raises RecursionError past about a thousand levels, and code that
walks a decoded value (validation, audit metadata, JSON columns) can hit Python's recursion limit
on values shallower than that; either answered 500. No body of this API nests deeper than a few
levels (a mapping or rule definition: about six), so 64 leaves ample room and keeps every walker
safe. Found by tests/unit/test_api_fuzz.py; docs/http.md lists the decision.
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.exceptions import SerializationException
from litestar.serialization import decode_json
from litestar.types import Empty

MAX_JSON_DEPTH = 64


class JsonTooDeep(SerializationException):
    """A JSON body nested deeper than MAX_JSON_DEPTH (the error mapping names it in `details`)."""

    def __init__(self) -> None:
        super().__init__(f"the JSON body is nested more than {MAX_JSON_DEPTH} levels deep")


def json_depth(value: Any, limit: int = MAX_JSON_DEPTH) -> int:
    """How deeply `value` nests (a scalar is 0, `[]` is 1), counted without recursion; stops
    counting once past `limit` (returns limit + 1)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        depth += 1
        if depth > limit:
            return limit + 1
        deepest = max(deepest, depth)
        stack.extend((child, depth) for child in children if isinstance(child, dict | list))
    return deepest


class ReckaiRequest(Request[Any, Any, Any]):
    async def json(self) -> Any:
        if self._json is Empty and self._connection_state.json is Empty:
            body = await self.body()
            try:
                value = decode_json(body or b"null", type_decoders=self.route_handler.resolve_type_decoders())
            except RecursionError:
                raise JsonTooDeep() from None
            # Counting brackets is a cheap upper bound of the depth: most bodies need no walk.
            if (body.count(b"[") + body.count(b"{") > MAX_JSON_DEPTH
                    and json_depth(value) > MAX_JSON_DEPTH):
                raise JsonTooDeep()
            self._json = self._connection_state.json = value
        return await super().json()
