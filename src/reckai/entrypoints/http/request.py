"""Input every route refuses before a handler sees it (found by tests/unit/test_api_fuzz.py;
docs/http.md lists the decisions):

- JSON bodies nested deeper than `MAX_JSON_DEPTH` levels: 400 MALFORMED_BODY. msgspec decodes
  recursively and raises RecursionError past about a thousand levels, and code that walks a
  decoded value (validation, audit metadata, JSON columns) can hit Python's recursion limit on
  shallower values; either answered 500. No body of this API nests deeper than a few levels (a
  mapping or rule definition: about six), so 64 leaves ample room and keeps every walker safe.
- A NUL character (U+0000) in any string of a JSON body (keys included), in a query parameter or
  in a path parameter: 400 VALIDATION_ERROR naming the field. PostgreSQL refuses NUL in text and
  jsonb, so it would fail deep in a repository (500) or, worse, be stored by one adapter and not
  by the other; no field of this API has a use for it. (`ReckaiRequest.json` checks bodies,
  `refuse_nul_characters` is the app-level guard for query and path.)
- A body that is not UTF-8 (e.g. starting with the UTF-16 byte-order mark FF FE): 400
  VALIDATION_ERROR naming `body`. JSON is UTF-8 (RFC 8259 §8.1); msgspec's decode error for such
  bytes is not a `msgspec.DecodeError`, so Litestar let it through as a 500.
- A query parameter the route does not declare: 400 VALIDATION_ERROR naming it (and the route's
  parameters). Ignoring it answered a different question than the one asked
  (`/api/exceptions?reference=561760235452` listed every exception before that filter existed).
  `refuse_unknown_query_parameters` is an app-level guard: it reads what the route handler and its
  dependencies declare (Litestar's own parameter model), so a route added later gets it unchanged.
- A decimal query parameter (`decimal_query`) out of what an amount column can hold
  (`1E+999999`, `1E-999999`): 400 VALIDATION_ERROR naming the parameter. Python's Decimal takes
  them, PostgreSQL's NUMERIC refuses them (a 500 from the repository).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.exceptions import SerializationException
from litestar.handlers import BaseRouteHandler
from litestar.serialization import decode_json
from litestar.types import Empty

from reckai.application.errors import FieldError, ValidationFailed

MAX_JSON_DEPTH = 64
NUL_MESSAGE = "must not contain a NUL character (U+0000)"
NOT_UTF8_MESSAGE = "must be JSON encoded as UTF-8"
# Amount filters compare with DECIMAL(18,2) columns: 16 digits before the point is the widest
# value stored; 6 after it is ample for a filter (the columns keep 2).
MAX_DECIMAL_INTEGER_DIGITS = 16
MAX_DECIMAL_FRACTION_DIGITS = 6
DECIMAL_MESSAGE = (f"must be a decimal number with at most {MAX_DECIMAL_INTEGER_DIGITS} digits before "
                   f"and {MAX_DECIMAL_FRACTION_DIGITS} after the point")


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


def nul_path(value: Any) -> str | None:
    """The dotted path (`metadata.entries.1.account`) of the first string of `value`, key or value,
    that contains U+0000; None when there is none. "" is the value itself."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return path
        elif isinstance(item, dict):
            for key, child in item.items():
                child_path = f"{path}.{key}" if path else str(key)
                if isinstance(key, str) and "\x00" in key:
                    return child_path.replace("\x00", "\\u0000")
                stack.append((child, child_path))
        elif isinstance(item, list):
            stack.extend((child, f"{path}.{index}" if path else str(index)) for index, child in enumerate(item))
    return None


def refuse_nul_characters(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """App-level guard: no NUL character in a query or path parameter."""
    problems = [FieldError(name, NUL_MESSAGE) for name, value in connection.query_params.multi_items()
                if "\x00" in name or "\x00" in value]
    problems += [FieldError(name, NUL_MESSAGE) for name, value in connection.path_params.items()
                 if isinstance(value, str) and "\x00" in value]
    if problems:
        raise ValidationFailed([FieldError(p.field.replace("\x00", "\\u0000"), p.message) for p in problems])


UNKNOWN_QUERY_MESSAGE = "is not a query parameter of this route"
_DECLARED_QUERY_KEY = "reckai_declared_query_parameters"


def declared_query_parameters(connection: ASGIConnection[Any, Any, Any, Any],
                              handler: BaseRouteHandler) -> frozenset[str]:
    """The query parameter names `handler` and its dependencies declare (aliases included), as
    Litestar's parameter model for the route reads them; worked out once per handler and app."""
    # Litestar hands each guard a copy of the handler; the scope holds the app's own (stable) one.
    route_handler: BaseRouteHandler = connection.scope.get("route_handler", handler)
    cache: dict[int, tuple[BaseRouteHandler, frozenset[str]]] = connection.app.state.setdefault(
        _DECLARED_QUERY_KEY, {})
    found = cache.get(id(route_handler))
    if found is not None and found[0] is route_handler:
        return found[1]
    model = route_handler.create_kwargs_model(path_parameters=dict.fromkeys(connection.path_params))  # type: ignore[arg-type]
    names = frozenset(parameter.field_alias for parameter in model.expected_query_params)
    cache[id(route_handler)] = (route_handler, names)
    return names


def refuse_unknown_query_parameters(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """App-level guard: every query parameter must be one the route declares (400 naming the others)."""
    given = connection.query_params.keys()
    if not given:
        return
    declared = declared_query_parameters(connection, handler)
    unknown = sorted(name for name in given if name not in declared)
    if unknown:
        accepted = ", ".join(sorted(declared)) or "none"
        raise ValidationFailed([FieldError(name, f"{UNKNOWN_QUERY_MESSAGE} (it takes: {accepted})")
                                for name in unknown])


def decimal_query(value: str | None, field: str) -> Decimal | None:
    """A decimal query parameter (`amount_min=1500.50`), or ValidationFailed naming `field`: not a
    number, not finite, or past what the amount columns can compare with."""
    if value is None:
        return None
    try:
        amount = Decimal(value.strip())
    except InvalidOperation:
        raise ValidationFailed([FieldError(field, DECIMAL_MESSAGE)]) from None
    if not amount.is_finite():
        raise ValidationFailed([FieldError(field, DECIMAL_MESSAGE)])
    fraction = normalized.as_tuple().exponent if (normalized := amount.normalize()) else 0
    if amount.adjusted() >= MAX_DECIMAL_INTEGER_DIGITS or (isinstance(fraction, int)
                                                            and -fraction > MAX_DECIMAL_FRACTION_DIGITS):
        raise ValidationFailed([FieldError(field, DECIMAL_MESSAGE)])
    return amount


class ReckaiRequest(Request[Any, Any, Any]):
    async def json(self) -> Any:
        if self._json is Empty and self._connection_state.json is Empty:
            body = await self.body()
            try:
                body.decode("utf-8")
            except UnicodeDecodeError:
                raise ValidationFailed([FieldError("body", NOT_UTF8_MESSAGE)]) from None
            try:
                value = decode_json(body or b"null", type_decoders=self.route_handler.resolve_type_decoders())
            except RecursionError:
                raise JsonTooDeep() from None
            # Counting brackets is a cheap upper bound of the depth: most bodies need no walk.
            if (body.count(b"[") + body.count(b"{") > MAX_JSON_DEPTH
                    and json_depth(value) > MAX_JSON_DEPTH):
                raise JsonTooDeep()
            # A NUL can only be written as an escape in JSON: most bodies need no walk either.
            if b"\\u0000" in body and (path := nul_path(value)) is not None:
                raise ValidationFailed([FieldError(path or "body", NUL_MESSAGE)])
            self._json = self._connection_state.json = value
        return await super().json()
