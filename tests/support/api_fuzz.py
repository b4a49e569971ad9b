"""An OpenAPI-driven request fuzzer (hypothesis) for the whole HTTP API, shared by the in-memory
(tests/unit/test_api_fuzz.py) and PostgreSQL (tests/integration/test_api_fuzz_postgres.py) runs.

`operations(app, document)` lists every operation of the app's own OpenAPI document plus any route
the document leaves out, so a new route is fuzzed without touching the tests. For one operation,
`requests_for(operation, pools)` draws a request: path ids (known ids of the tenant, random UUIDs,
strings that are no UUID at all), query parameters (in range, out of range, wrong type, NUL bytes,
repeated, unknown), a body derived from the operation's schema (valid, then damaged: a required
field dropped, an unknown field added, a value of the wrong type, null, a huge or NUL-bearing or
odd-unicode string, a huge integer; or random JSON, or bytes that are not JSON), random extra
headers and Content-Types, and a caller (each role's token, no token, garbage tokens).

`FuzzTenant` holds the organization the fuzzer works in: one user per role with a working token
(re-signed in when a fuzzed request revokes it: a logout, an ended session), the ids the fuzzer
may aim at, and the rate limits it clears between examples.

`check_response(request, response)` is the contract under test: never a 5xx; every 4xx is the
error envelope `{"success": false, "error": {"code", "message", "details"}}` (or, on the HTML pages
behind mail links, a page for people); every 2xx JSON body under /api or /health is
`{"success": true, "data": ...}`.
"""

from __future__ import annotations

import json
import string
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from reckai.application.ports.rate_limit import TIERS, auth_account_subject
from reckai.entrypoints.http.pages import PAGE_PATHS
from tests.support import reconciliation_jobs as rj
from tests.support.identity import (
    DEFAULT_PASSWORD,
    SECOND_PASSWORD,
    bearer,
    create_user_with_role,
    login,
    onboard,
    relax_auth_limits,
)

ROLES = ("admin", "analyst", "auditor", "supervisor")
METHODS = ("get", "post", "put", "patch", "delete", "options")


# --- the operations ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Param:
    name: str
    location: str  # "path" | "query" | "header"
    schema: Mapping[str, Any]
    required: bool


@dataclass(frozen=True)
class Operation:
    method: str  # upper case
    path: str  # OpenAPI template, e.g. /api/users/{user_id}
    params: tuple[Param, ...]
    body_media: str | None  # "application/json", "multipart/form-data" or None
    body_schema: Mapping[str, Any] | None
    body_required: bool
    documented: bool = True  # False: a route the document leaves out (its query parameters unknown)

    @property
    def query_names(self) -> frozenset[str] | None:
        """The query parameters the route declares (None when the document does not show it)."""
        return frozenset(p.name for p in self.params if p.location == "query") if self.documented else None

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"


def operations(app: Any, document: Mapping[str, Any]) -> list[Operation]:
    """Every operation of the OpenAPI document, then every route of `app` the document does not
    show (its path parameters taken as strings)."""
    found: dict[tuple[str, str], Operation] = {}
    for path, item in document.get("paths", {}).items():
        shared = item.get("parameters", [])
        for method, op in item.items():
            if method not in METHODS:
                continue
            params = tuple(Param(p["name"], p["in"], p.get("schema", {}), bool(p.get("required")))
                           for p in [*shared, *op.get("parameters", [])])
            content = op.get("requestBody", {}).get("content", {})
            media = next(iter(content), None)
            found[(method.upper(), path)] = Operation(
                method.upper(), path, params, media, content[media].get("schema") if media else None,
                bool(op.get("requestBody", {}).get("required")))
    for route in getattr(app, "routes", []):
        template = route.path_format
        names = list(getattr(route, "path_parameters", {}) or {})
        for method in sorted(getattr(route, "methods", ()) or ()):
            if method.lower() not in METHODS or (method, template) in found:
                continue
            found[(method, template)] = Operation(
                method, template, tuple(Param(n, "path", {"type": "string"}, True) for n in names),
                "application/json" if method in ("POST", "PUT", "PATCH") else None, None, False, documented=False)
    return sorted(found.values(), key=lambda o: (o.path, o.method))


# --- pools of values the fuzzer aims with --------------------------------------------------------

@dataclass
class Pools:
    """Ids of the fuzzed tenant, by path-parameter name (`file_id`, `user_id`, ...). `safe_only`
    holds ids that only reads may aim at (the role users themselves: deleting or demoting them
    would stop the fuzzer, not find a bug). `words` are domain words (enum values of the document
    plus a few the DTOs accept as free strings) used in place of random text half the time."""

    ids: dict[str, list[str]] = field(default_factory=dict)
    read_only_ids: dict[str, list[str]] = field(default_factory=dict)
    words: list[str] = field(default_factory=list)
    examples: dict[str, list[Any]] = field(default_factory=dict)  # field name -> plausible values

    def all_ids(self) -> list[str]:
        return sorted({i for values in self.ids.values() for i in values})


DOMAIN_WORDS = [
    "admin", "analyst", "auditor", "supervisor", "bank", "settlement", "switch", "card", "gl", "exact", "fuzzy",
    "range", "regex", "open", "in_progress", "pending_approval", "resolved", "closed", "escalated", "pending",
    "running", "completed", "failed", "cancelled", "low", "medium", "high", "critical", "me", "none",
    "missing_in_left", "missing_in_right", "amount_mismatch", "duplicate", "written_off", "timing_difference",
    "rule_configuration", "exception_resolution", "ledger_posting", "user_onboarding", "report_generation",
    "system_setting", "left", "right", "NGN", "USD", "created_at", "-created_at", "amount", "-amount",
    "due_at", "severity", "matched", "unmatched", "suggested", "standard", "enterprise", "workflow",
    "password_policy", "rate_limits", "upload", "daily", "aging", "csv", "pdf", "excel", "2024-01-02", "2025-12-01", "true", "false",
]

_ODD_TEXT = [
    "", " ", "\x00", "a\x00b", "\x00" * 3, "null", "None", "undefined", "-1", "0", "1e309", "NaN", "true",
    "' OR 1=1 --", "\"; DROP TABLE users; --", "<script>alert(1)</script>", "../../etc/passwd", "%00", "%s%n",
    "${jndi:ldap://x}", "{{7*7}}", "\u202e\u0645\u0631\u062d\u0628\u0627", "𝕳𝖊𝖑𝖑𝖔", "💥" * 50, "é" * 200,
    "\ufeff", "\u0000\u0001\u001f", "\r\n\r\n", "\t", "ǅ", "İ", "ß" * 10, "a" * 256, "x" * 5000,
    "00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff", "not-a-uuid",
    "2024-02-30", "0000-01-01", "9999-12-31", "10000-01-01", "2024-01-02T25:61:00Z", "1" * 40,
    "99999999999999999999999999.99", "-0.00", "1,000.00", "0x10",
]
_HUGE_INTS = [2**31 - 1, 2**31, 2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**30, -(10**30), -1, 0]
_TEXT = st.text(max_size=30)
_LONG_TEXT = st.sampled_from([70_000, 300_000]).map(lambda n: "Ω" * (n // 2))  # far past any column limit
_ODD_STRINGS = st.one_of(st.sampled_from(_ODD_TEXT), _TEXT.map(lambda t: t + "\x00"), _LONG_TEXT,
                         st.text(alphabet=st.characters(codec="utf-8"), max_size=20))
_JSON_LEAF = st.one_of(st.none(), st.booleans(), st.integers(-(10**20), 10**20), st.sampled_from(_HUGE_INTS),
                       st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12),
                       st.sampled_from(_ODD_TEXT[:20]))
JSON_VALUES = st.recursive(
    _JSON_LEAF,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(st.text(max_size=10), children,
                                                                                max_size=4)),
    max_leaves=15)
HOSTILE = st.one_of(st.none(), st.booleans(), st.sampled_from(_HUGE_INTS), st.integers(),
                    st.floats(allow_nan=False, allow_infinity=False), _ODD_STRINGS, st.builds(list), st.builds(dict),
                    st.lists(_JSON_LEAF, max_size=3), st.dictionaries(st.text(max_size=6), _JSON_LEAF, max_size=3),
                    st.builds(lambda: [[[[[[[[[[[]]]]]]]]]]]))


def _resolve(schema: Mapping[str, Any] | None, components: Mapping[str, Any]) -> Mapping[str, Any]:
    seen = 0
    while schema and "$ref" in schema and seen < 20:
        schema = components.get(schema["$ref"].rsplit("/", 1)[-1], {})
        seen += 1
    return schema or {}


class Generator:
    """Strategies derived from schemas of one OpenAPI document, aimed with `pools`."""

    def __init__(self, document: Mapping[str, Any], pools: Pools) -> None:
        self.components = document.get("components", {}).get("schemas", {})
        self.pools = pools

    # plausible values: what a client that read the document would send
    def plausible(self, schema: Mapping[str, Any] | None, name: str = "", depth: int = 0) -> st.SearchStrategy[Any]:
        schema = _resolve(schema, self.components)
        examples = self.pools.examples.get(name)
        base = self._plausible(schema, name, depth)
        if examples:
            return st.one_of(st.sampled_from(examples).map(_copy), base)
        return base

    def _plausible(self, schema: Mapping[str, Any], name: str, depth: int) -> st.SearchStrategy[Any]:
        for key in ("oneOf", "anyOf"):
            if key in schema:
                return st.one_of([self.plausible(s, name, depth) for s in schema[key]])
        if "allOf" in schema:
            return self.plausible(schema["allOf"][0], name, depth)
        if "enum" in schema:
            return st.sampled_from(list(schema["enum"]))
        kind = schema.get("type")
        if isinstance(kind, list):
            return st.one_of([self._plausible({**schema, "type": k}, name, depth) for k in kind])
        if kind == "null":
            return st.none()
        if kind == "boolean":
            return st.booleans()
        if kind == "integer":
            low, high = schema.get("minimum"), schema.get("maximum")
            return st.integers(int(low) if low is not None else -5, int(high) if high is not None else 500)
        if kind == "number":
            return st.one_of(st.integers(-1000, 10**6), st.decimals(-(10**6), 10**6, places=2).map(str))
        if kind == "string":
            return self._string(schema, name)
        if kind == "array":
            if depth > 3:
                return st.just([])
            return st.lists(self.plausible(schema.get("items"), name, depth + 1), max_size=3)
        if kind == "object" or "properties" in schema:
            return self._object(schema, depth)
        return JSON_VALUES  # {} or an unknown shape: anything

    def _string(self, schema: Mapping[str, Any], name: str) -> st.SearchStrategy[str]:
        fmt = schema.get("format")
        if fmt == "uuid":
            ids = self.pools.all_ids()
            return st.one_of(st.sampled_from(ids), st.uuids().map(str)) if ids else st.uuids().map(str)
        if fmt == "date":
            return st.dates().map(lambda d: d.isoformat())
        if fmt == "date-time":
            return st.datetimes().map(lambda d: d.isoformat() + "Z")
        if fmt == "email" or "email" in name:
            return st.one_of(st.emails(), st.just(f"fuzz.{uuid.uuid4().hex[:6]}@example.com"))
        if "password" in name:
            return st.sampled_from([DEFAULT_PASSWORD, SECOND_PASSWORD, "short", "Quartz!Ledger-7291x" * 3])
        words = self.pools.words or DOMAIN_WORDS
        return st.one_of(st.sampled_from(words), st.text(max_size=20),
                         st.lists(st.sampled_from(words), min_size=1, max_size=3).map(",".join))

    def _object(self, schema: Mapping[str, Any], depth: int) -> st.SearchStrategy[dict[str, Any]]:
        properties = schema.get("properties", {})
        required = set(schema.get("required", []))
        fixed = {k: self.plausible(v, k, depth + 1) for k, v in properties.items() if k in required}
        optional = {k: self.plausible(v, k, depth + 1) for k, v in properties.items() if k not in required}
        extra = schema.get("additionalProperties")
        strategy = st.fixed_dictionaries(fixed, optional=optional)
        if extra is not None and extra is not False and not properties and depth < 3:
            strategy = st.dictionaries(st.one_of(st.sampled_from(DOMAIN_WORDS), st.text(max_size=8)),
                                       self.plausible(extra if isinstance(extra, dict) else {}, "", depth + 1),
                                       max_size=4)
        return strategy

    # damage
    def body(self, schema: Mapping[str, Any] | None) -> st.SearchStrategy[Any]:
        """A JSON-able value for a body of `schema`, or `NOT_JSON(bytes)`, or `NO_BODY`."""
        plausible = self.plausible(schema)
        return st.one_of(
            plausible, plausible, plausible.flatmap(damaged), plausible.flatmap(damaged),
            plausible.flatmap(damaged), JSON_VALUES, HOSTILE,
            st.sampled_from([NO_BODY, NotJson(b"{"), NotJson(b"\x00"), NotJson(b'{"a": 1}garbage'),
                             NotJson(b'{"a": "\\ud800"}'), NotJson(b"[" * 5000), NotJson(b"\xff\xfe{}"),
                             NotJson(b'{"a":1,"a":2}'), NotJson(b"1e999999"), NotJson(b'"\\u0000"')]),
            st.binary(max_size=64).map(NotJson), plausible.flatmap(deeply_nested))


@dataclass(frozen=True)
class NotJson:
    raw: bytes


NO_BODY = NotJson(b"")


_DEEP = "\u0000deep\u0000"


@st.composite
def deeply_nested(draw: st.DrawFn, value: Any) -> NotJson:
    """`value` with one field (or the whole body) replaced by arrays or objects nested around the
    depth limits: of the API (64), of msgspec and Python's recursion (about 1000)."""
    depth = draw(st.sampled_from([63, 64, 65, 200, 990, 1000, 5000]))
    nest = draw(st.sampled_from(["[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth,
                                 "[" * depth]))
    if isinstance(value, dict) and value:
        value = _copy(value)
        value[draw(st.sampled_from(sorted(value)))] = _DEEP
        return NotJson(json.dumps(value).replace(json.dumps(_DEEP), nest).encode())
    return NotJson(nest.encode())


def _copy(value: Any) -> Any:
    return json.loads(json.dumps(value))


@st.composite
def damaged(draw: st.DrawFn, value: Any) -> Any:
    """`value` with one to three places changed: a key dropped, an unknown key added, a value
    replaced by something hostile (wrong type, null, huge, NUL-bearing), at any depth."""
    value = _copy(value)
    for _ in range(draw(st.integers(1, 3))):
        value = _damage_once(draw, value)
    return value


def _hostile(draw: st.DrawFn) -> Any:
    return _copy(draw(HOSTILE))


def _damage_once(draw: st.DrawFn, value: Any) -> Any:
    if isinstance(value, dict) and value:
        key = draw(st.sampled_from(sorted(value)))
        action = draw(st.sampled_from(["drop", "replace", "recurse", "recurse", "add"]))
        if action == "drop":
            value.pop(key)
        elif action == "replace":
            value[key] = _hostile(draw)
        elif action == "recurse":
            value[key] = _damage_once(draw, value[key])
        else:
            value[draw(st.one_of(st.sampled_from(["id", "organization_id", "__proto__", "", "x" * 300, "\x00"]),
                                 st.text(max_size=10)))] = _hostile(draw)
        return value
    if isinstance(value, list) and value:
        index = draw(st.integers(0, len(value) - 1))
        if draw(st.booleans()):
            value[index] = _damage_once(draw, value[index])
        else:
            value.append(_hostile(draw))
        return value
    if isinstance(value, dict):
        value[draw(st.text(max_size=10))] = _hostile(draw)
        return value
    return _hostile(draw)


# --- requests ------------------------------------------------------------------------------------

@dataclass
class FuzzRequest:
    method: str
    url: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    content: bytes | None
    files: dict[str, Any] | None
    data: dict[str, str] | None
    caller: str  # a role, or "none" / "garbage" / ...
    declared_query: frozenset[str] | None = None  # the operation's query parameters, when documented

    def describe(self) -> str:
        body = (self.content or b"")[:300]
        return f"{self.method} {self.url} query={self.query!r} caller={self.caller} headers={self.headers!r} body={body!r}"


_BAD_IDS = ["not-a-uuid", "0", "-1", "00000000-0000-0000-0000-00000000000g", "%00", "%2e%2e", "' OR 1=1 --",
            "1" * 400, "ZZZZZZZZ-ZZZZ-ZZZZ-ZZZZ-ZZZZZZZZZZZZ", "{00000000-0000-0000-0000-000000000000}",
            "00000000000000000000000000000000", "urn:uuid:00000000-0000-0000-0000-000000000000", "é", "me"]
_HEADER_SAFE = st.text(alphabet=string.printable.replace("\r", "").replace("\n", "").replace("\x0b", "")
                       .replace("\x0c", ""), max_size=60)
EXTRA_HEADERS = st.dictionaries(
    st.sampled_from(["X-Request-ID", "Accept", "Accept-Encoding", "Accept-Language", "User-Agent",
                     "X-Forwarded-For", "Origin", "If-None-Match", "Cookie", "Range", "X-HTTP-Method-Override",
                     "Content-Encoding", "Expect", "Forwarded"]),
    st.one_of(_HEADER_SAFE, st.sampled_from(["application/json", "*/*", "text/html", "gzip", "100-continue",
                                             "bytes=0-1", "::1", "for=1.2.3.4", "\t", "a" * 4000])),
    max_size=3)
_JSON_TYPES = ["application/json"] * 8 + ["application/json; charset=utf-8", "application/vnd.api+json",
                                          "application/json; charset=latin-1", "text/plain", "application/xml",
                                          "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                                          "", "application/json;;;", "*/*"]


class Callers:
    """The caller of a request: a role's valid token, or a broken credential."""

    def __init__(self, tenant: FuzzTenant) -> None:
        self.tenant = tenant

    def strategy(self) -> st.SearchStrategy[str]:
        return st.one_of(st.sampled_from(list(ROLES) * 3), st.sampled_from(
            ["none", "garbage", "empty_bearer", "basic", "other_alg", "tampered", "refresh_as_access"]))

    def headers(self, caller: str, draw: st.DrawFn) -> dict[str, str]:
        if caller in ROLES:
            return bearer(self.tenant.token(caller))
        token = self.tenant.token("admin")
        return {
            "none": {},
            "garbage": {"Authorization": "Bearer " + draw(_HEADER_SAFE)},
            "empty_bearer": {"Authorization": draw(st.sampled_from(["Bearer", "Bearer ", "bearer  x", "Token x",
                                                                    "Bearer a.b.c", "Bearer ..", "Bearer \t"]))},
            "basic": {"Authorization": "Basic YWRtaW46YWRtaW4="},
            "other_alg": {"Authorization": "Bearer eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJ4In0."},
            "tampered": {"Authorization": "Bearer " + token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")},
            "refresh_as_access": {"Authorization": "Bearer " + self.tenant.refresh_token},
        }[caller]


def requests_for(operation: Operation, generator: Generator, tenant: FuzzTenant) -> st.SearchStrategy[FuzzRequest]:
    callers = Callers(tenant)

    @st.composite
    def build(draw: st.DrawFn) -> FuzzRequest:
        caller = draw(callers.strategy())
        path = operation.path
        for param in operation.params:
            if param.location != "path":
                continue
            value = draw(_path_value(param, generator.pools, operation.method))
            path = path.replace("{" + param.name + "}", urllib.parse.quote(value, safe=""))
        query: list[tuple[str, str]] = []
        for param in operation.params:
            if param.location == "query" and draw(st.integers(0, 2)) > 0:
                for value in draw(st.lists(_query_value(param, generator), min_size=1, max_size=2)):
                    query.append((param.name, value))
        for name, value in draw(st.lists(st.tuples(st.sampled_from(["page", "per_page", "sort", "x", "", "filter[a]",
                                                                       "status", "limit", "offset", "\x00"]),
                                                    _query_value(Param("x", "query", {}, False), generator)),
                                          max_size=2)):
            query.append((name, value))
        headers = {**draw(EXTRA_HEADERS), **callers.headers(caller, draw)}
        content = files = data = None
        if operation.body_media == "multipart/form-data" and draw(st.integers(0, 3)) > 0:
            files, data = draw(_multipart(operation, generator))
        elif operation.body_media is not None or draw(st.integers(0, 9)) == 0:
            body = draw(generator.body(operation.body_schema))
            if isinstance(body, NotJson):
                content = body.raw
            else:
                content = json.dumps(body).encode()
            if content or draw(st.booleans()):
                content_type = draw(st.sampled_from(_JSON_TYPES))
                if content_type:
                    headers["Content-Type"] = content_type
        return FuzzRequest(operation.method, path, query, headers, content, files, data, caller,
                           operation.query_names)

    return build()


def _path_value(param: Param, pools: Pools, method: str) -> st.SearchStrategy[str]:
    known = list(pools.ids.get(param.name, []))
    if method == "GET":
        known += pools.read_only_ids.get(param.name, [])
    choices = [st.uuids().map(str), st.sampled_from(_BAD_IDS), st.text(min_size=1, max_size=40)]
    if known:
        choices = [st.sampled_from(known)] * 4 + choices
    elif pools.all_ids():
        choices.append(st.sampled_from(pools.all_ids()))  # an id of another kind of resource
    return st.one_of(choices)


def _query_value(param: Param, generator: Generator) -> st.SearchStrategy[str]:
    plausible = generator.plausible(param.schema, param.name).map(_as_query)
    return st.one_of(plausible, plausible, st.sampled_from([str(n) for n in _HUGE_INTS] + _ODD_TEXT[:40]),
                     st.integers().map(str), st.text(max_size=20), st.sampled_from(["1.5", "1e3", "", " 1", "true",
                                                                                     "[]", "{}", "a,,b", ","]))


def _as_query(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


@st.composite
def _multipart(draw: st.DrawFn, operation: Operation, generator: Generator) -> tuple[dict[str, Any], dict[str, str]]:
    schema = _resolve(operation.body_schema, generator.components)
    data: dict[str, str] = {}
    files: dict[str, Any] = {}
    for name, prop in schema.get("properties", {}).items():
        prop = _resolve(prop, generator.components)
        if prop.get("format") == "binary" or prop.get("contentMediaType") or name == "file":
            if draw(st.integers(0, 5)) > 0:
                files[name] = (draw(st.sampled_from(["a.csv", "b.xlsx", "", "x" * 300, "é.csv"])),
                               draw(st.one_of(st.just(b"date,amount,currency\n2024-01-02,1.00,NGN\n"),
                                              st.binary(max_size=100))), "application/octet-stream")
        elif draw(st.integers(0, 5)) > 0:
            value = draw(st.one_of(generator.plausible(prop, name).map(_as_query), _ODD_STRINGS))
            data[name] = value
    if not files:
        files["file"] = ("a.csv", b"a,b\n1,2\n", "text/csv")
    return files, data


# --- the edges, one by one: NUL in every string, numbers past every integer type ------------------

NUL = "nul\x00byte"
OVERFLOWS = ["9223372036854775808", "-9223372036854775809", "2147483648", "99999999999999999999999", "-1", "0",
             "1e400", "NaN", "\x00", "1\x00"]


def minimal_body(schema: Mapping[str, Any] | None, generator: Generator, name: str = "", depth: int = 0) -> Any:
    """A body with every property of `schema` given a plain valid-looking value (free-form objects
    from the pools' examples), so that each string in it can be replaced in turn."""
    schema = _resolve(schema, generator.components)
    if name in generator.pools.examples and depth > 0:
        return _copy(generator.pools.examples[name][0])
    for key in ("oneOf", "anyOf"):
        if key in schema:
            options = [s for s in schema[key] if _resolve(s, generator.components).get("type") != "null"]
            return minimal_body(options[0] if options else schema[key][0], generator, name, depth)
    if "enum" in schema:
        return next((v for v in schema["enum"] if v is not None), None)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "string":
        fmt = schema.get("format")
        if fmt == "uuid":
            ids = generator.pools.ids.get(name) or generator.pools.all_ids()
            return ids[0] if ids else str(uuid.uuid4())
        return {"date": "2025-12-01", "date-time": "2025-12-01T00:00:00Z"}.get(fmt or "", "plain text")
    if kind == "integer":
        return int(schema.get("minimum", 1))
    if kind == "number":
        return 1
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    if kind == "array":
        return [minimal_body(schema.get("items"), generator, name, depth + 1)] if depth < 4 else []
    if kind == "object" or "properties" in schema:
        return {k: minimal_body(v, generator, k, depth + 1) for k, v in schema.get("properties", {}).items()}
    return "plain text"


BIG_INTS = [2**31, 2**63, 10**30, -(2**63) - 1]


def _int_paths(value: Any, path: tuple[Any, ...] = ()) -> Iterable[tuple[Any, ...]]:
    if isinstance(value, int) and not isinstance(value, bool):
        yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _int_paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _int_paths(item, (*path, index))


def _with_value(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    value = _copy(value)
    if not path:
        return new
    target = value
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = new
    return value


def _string_paths(value: Any, path: tuple[Any, ...] = ()) -> Iterable[tuple[Any, ...]]:
    if isinstance(value, str):
        yield path
    elif isinstance(value, dict):
        yield (*path, KEY)  # a new key with a NUL byte in this object
        for key, item in value.items():
            yield from _string_paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _string_paths(item, (*path, index))


KEY = object()


def _with_nul(value: Any, path: tuple[Any, ...]) -> Any:
    value = _copy(value)
    if not path:
        return NUL
    target = value
    for step in path[:-1]:
        target = target[step]
    if path[-1] is KEY:
        target["k\x00"] = "v"
    else:
        target[path[-1]] = NUL
    return value


def edge_requests(operation: Operation, generator: Generator, tenant: FuzzTenant, caller: str = "admin") -> list[FuzzRequest]:
    """For one operation: each string of a full body in turn (and a new key of each object) made to
    carry a NUL byte, each integer of it made one past int32, int64 or far beyond; each query parameter in turn given a NUL byte or a number past every integer
    type; each path parameter given a NUL byte. All as `caller`, so they pass authorization."""
    path = operation.path
    for param in operation.params:
        if param.location == "path":
            known = generator.pools.ids.get(param.name) or generator.pools.read_only_ids.get(param.name) or []
            path = path.replace("{" + param.name + "}", known[0] if known else str(uuid.uuid4()))
    headers = {**bearer(tenant.token(caller)), "Content-Type": "application/json"}
    found: list[FuzzRequest] = []
    if operation.body_media == "application/json":
        body = minimal_body(operation.body_schema, generator)
        for string_path in _string_paths(body):
            content = json.dumps(_with_nul(body, string_path)).encode()
            found.append(FuzzRequest(operation.method, path, [], dict(headers), content, None, None, caller))
        for int_path in _int_paths(body):
            for big in BIG_INTS:
                content = json.dumps(_with_value(body, int_path, big)).encode()
                found.append(FuzzRequest(operation.method, path, [], dict(headers), content, None, None, caller))
    elif operation.body_media == "multipart/form-data":
        schema = _resolve(operation.body_schema, generator.components)
        fields = {k: str(minimal_body(v, generator, k, 1)) for k, v in schema.get("properties", {}).items()
                  if k != "file"}
        file = ("a.csv", b"date,amount,currency\n2025-12-01,1.00,NGN\n", "text/csv")
        for name in [*fields, "filename"]:
            data = {k: (NUL if k == name else v) for k, v in fields.items()}
            named = ("nul\x00.csv", file[1], file[2]) if name == "filename" else file
            found.append(FuzzRequest(operation.method, path, [], bearer(tenant.token(caller)), None, {"file": named},
                                     data, caller))
    for param in operation.params:
        if param.location == "query":
            for value in OVERFLOWS + [NUL]:
                found.append(FuzzRequest(operation.method, path, [(param.name, value)], bearer(tenant.token(caller)),
                                         b"{}" if operation.body_media == "application/json" else None, None, None,
                                         caller))
        elif param.location == "path":
            bad = operation.path.replace("{" + param.name + "}", urllib.parse.quote(NUL, safe=""))
            for other in operation.params:
                if other.location == "path" and other.name != param.name:
                    bad = bad.replace("{" + other.name + "}", str(uuid.uuid4()))
            found.append(FuzzRequest(operation.method, bad, [], bearer(tenant.token(caller)), None, None, None, caller))
    return found


# --- the tenant the fuzzer works in ---------------------------------------------------------------

@dataclass
class FuzzTenant:
    client: Any
    container: Any
    org_code: str
    emails: dict[str, str]
    passwords: dict[str, str]
    user_ids: dict[str, uuid.UUID]
    organization_id: uuid.UUID | None = None
    tokens: dict[str, str] = field(default_factory=dict)
    refresh_token: str = ""
    relogins: int = 0
    unlocks: int = 0

    def token(self, role: str) -> str:
        return self.tokens[role]

    def sign_in(self, role: str) -> None:
        def attempt() -> Any:
            answer = self.client.post("/api/auth/login", json={
                "organization_code": self.org_code, "email": self.emails[role], "password": self.passwords[role]})
            relax_auth_limits(self.client, self.org_code, self.emails[role])
            return answer

        answer = attempt()
        if answer.status_code == 401 and self.organization_id is not None:
            # Fuzzed re-authentications (password change, MFA enrolment) with wrong passwords count as
            # failed sign-ins and lock the account, as they should: unlock it, the fuzzer needs it.
            self.unlock(role)
            answer = attempt()
        assert answer.status_code == 200, (role, answer.text)
        data = answer.json()["data"]
        assert data["status"] == "authenticated", (role, data)
        self.tokens[role] = data["tokens"]["access_token"]
        if role == "admin":
            self.refresh_token = data["tokens"]["refresh_token"]

    def unlock(self, role: str) -> None:
        import dataclasses

        self.unlocks += 1
        with self.container.database.unit_of_work(self.organization_id) as uow:
            user = uow.users.get(self.user_ids[role])
            uow.users.update(dataclasses.replace(user, failed_login_attempts=0, locked_until=None))
            uow.commit()
        relax_auth_limits(self.client, self.org_code, self.emails[role])

    def fresh_limits(self) -> None:
        limiter = self.container.rate_limiter
        for user_id in self.user_ids.values():
            for tier in ("api", "upload", "report", "export"):
                limiter.reset(TIERS[tier], str(user_id))
        if self.organization_id is not None:
            limiter.reset(TIERS["export_organization"], str(self.organization_id))
        relax_auth_limits(self.client)
        for role in ROLES:
            limiter.reset(TIERS["auth_account"], auth_account_subject(self.org_code, self.emails[role]))

    def keep_signed_in(self, role: str) -> None:
        """After a request that may have revoked `role`'s token (a logout, an ended session), sign in again."""
        if role not in ROLES:
            return
        answer = self.client.get("/api/auth/me", headers=bearer(self.tokens[role]))
        if answer.status_code == 401:
            self.relogins += 1
            self.sign_in(role)
        else:
            assert answer.status_code == 200, (role, answer.status_code, answer.text)


def send(tenant: FuzzTenant, request: FuzzRequest) -> Any:
    kwargs: dict[str, Any] = {"params": request.query, "headers": request.headers}
    if request.files is not None:
        kwargs["files"] = request.files
        kwargs["data"] = request.data
    elif request.content is not None:
        kwargs["content"] = request.content
    return tenant.client.request(request.method, request.url, **kwargs)


def check_response(request: FuzzRequest, response: Any) -> None:
    """Never a 5xx; every error is the envelope; every 2xx JSON answer of the API is a success envelope."""
    where = f"{response.status_code} for {request.describe()}\n-> {response.text[:600]}"
    assert response.status_code < 500, where
    if request.declared_query is not None:
        # issue 16: a query parameter the route does not take is refused, never ignored
        unknown = {name for name, _ in request.query if name not in request.declared_query}
        assert not unknown or response.status_code >= 400, (unknown, where)
    content_type = response.headers.get("content-type", "")
    path = urllib.parse.urlsplit(str(response.url)).path
    if response.status_code >= 400 and path in PAGE_PATHS and content_type.startswith("text/html"):
        # The pages behind mail links answer people: an HTML page saying what went wrong (the guards
        # before them, 413/415, still answer the envelope).
        assert "<h1>" in response.text and response.headers.get("referrer-policy") == "no-referrer", where
        return
    if response.status_code >= 400:
        assert content_type.startswith("application/json"), where
        body = response.json()
        assert set(body) == {"success", "error"} and body["success"] is False, where
        error = body["error"]
        assert set(error) == {"code", "message", "details"}, where
        assert isinstance(error["code"], str) and error["code"] and error["code"] == error["code"].upper(), where
        assert isinstance(error["message"], str) and error["message"], where
        assert isinstance(error["details"], list), where
        assert all(isinstance(d, dict) and set(d) == {"field", "message"} for d in error["details"]), where
        return
    if path.startswith(("/api/", "/health")) and content_type.startswith("application/json") and response.content:
        body = response.json()
        assert body.get("success") is True and "data" in body, where


def seed_pools(document: Mapping[str, Any], ids: Mapping[str, Iterable[Any]], read_only: Mapping[str, Iterable[Any]],
               examples: Mapping[str, list[Any]]) -> Pools:
    words = set(DOMAIN_WORDS)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("enum"), list):
                words.update(str(v) for v in node["enum"] if v is not None)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)
    return Pools(ids={k: [str(v) for v in vs] for k, vs in ids.items()},
                 read_only_ids={k: [str(v) for v in vs] for k, vs in read_only.items()},
                 words=sorted(words), examples=dict(examples))


def run_operation_examples(tenant: FuzzTenant, request: FuzzRequest,
                           after: Callable[[FuzzRequest, Any], None] | None = None) -> Any:
    tenant.fresh_limits()
    response = send(tenant, request)
    check_response(request, response)
    if (request.method == "POST" and request.caller in ROLES and response.status_code < 300
            and request.url.rstrip("/") == "/api/auth/password/change"):
        # the fuzzer guessed the current password (the pools know it): remember the new one
        tenant.passwords[request.caller] = json.loads(request.content or b"{}")["new_password"]
    if request.method != "GET":
        tenant.keep_signed_in(request.caller)
    if after:
        after(request, response)
    return response


# --- setting up the fuzzed organization ------------------------------------------------------------

def fetch_document(app: Any) -> dict[str, Any]:
    """The app's own /schema/openapi.json."""
    from litestar.testing import TestClient

    with TestClient(app) as client:
        answer = client.get("/schema/openapi.json")
        assert answer.status_code == 200, answer.text
        return answer.json()  # type: ignore[no-any-return]


def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, f"{response.status_code}: {response.text[:500]}"
    return response.json()["data"]


def set_up_tenant(client: Any, container: Any, document: Mapping[str, Any]) -> tuple[FuzzTenant, Generator]:
    """The organization the fuzzer works in, with something behind each kind of id."""
    org_id, admin = onboard(client)
    token = login(client, admin.org_code, admin.email, admin.password)
    emails, passwords, user_ids = {"admin": admin.email}, {"admin": admin.password}, {"admin": admin.user_id}
    for role in ROLES[1:]:
        email = f"{role}.{uuid.uuid4().hex[:8]}@example.com"
        user_ids[role], _ = create_user_with_role(client, token, role, email=email)
        emails[role], passwords[role] = email, SECOND_PASSWORD
    tenant = FuzzTenant(client, container, admin.org_code, emails, passwords, user_ids, organization_id=org_id)
    for role in ROLES:
        tenant.sign_in(role)
    h = bearer(tenant.token("admin"))
    tenant.fresh_limits()
    profile = rj.profile()
    files = []
    for data, name, kind, side in ((rj.bank_bytes(), "bank.csv", "bank", "left"),
                                   (rj.switch_bytes(), "switch.csv", "switch", "right")):
        uploaded = _ok(client.post("/api/files/upload", data={"file_type": kind},
                                   files={"file": (name, data, "text/csv")}, headers=h), 201)
        _ok(client.post(f"/api/files/{uploaded['id']}/map", json={"transformation_rules": profile[side]["mapping"]},
                        headers=h))
        files.append(uploaded["id"])
    rj.seed_rules(container.database, org_id, admin.user_id)
    job = _ok(client.post("/api/reconciliations", json=rj.start_body(uuid.UUID(files[0]), uuid.UUID(files[1])),
                          headers=h), 201)
    container.worker_runner.wake_relay()
    deadline = time.monotonic() + 120
    while _ok(client.get(f"/api/reconciliations/{job['id']}", headers=h))["status"] not in ("completed", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    exceptions = _ok(client.get("/api/exceptions?per_page=10", headers=h))
    generated = _ok(client.post("/api/reports", json={"type": "daily", "format": "excel", "job_id": job["id"]},
                                headers=h), 202)["report"]
    container.worker_runner.wake_relay()
    while _ok(client.get(f"/api/reports/{generated['id']}", headers=h))["status"] in ("pending", "running"):
        assert time.monotonic() < deadline + 60
        time.sleep(0.1)
    proposal = _ok(client.post("/api/rules", json={"name": "fuzz-rule", "definition": _rule_definition()},
                               headers=h), 202)
    report = _ok(client.post("/api/approvals", json=_approval_examples()[0], headers=h), 201)
    stream = _ok(client.post("/api/streams", json={
        "name": "fuzz stream", "currency": "NGN", "left": {"template_file_id": files[0]},
        "right": {"template_file_id": files[1]}}, headers=h), 201)
    victim_emails = [f"victim.{uuid.uuid4().hex[:6]}@example.com" for _ in range(2)]
    victims = [_ok(client.post("/api/users", json={"email": email, "name": "Vic Tim", "role": "analyst",
                                                   "password": DEFAULT_PASSWORD}, headers=h), 201)["id"]
               for email in victim_emails]
    sessions = [s["id"] for s in _ok(client.get("/api/sessions", headers=h))]
    ids = {"file_id": files, "job_id": [job["id"]], "exception_id": [e["id"] for e in exceptions],
           "rule_id": [proposal["rule"]["id"]], "approval_id": [proposal["approval"]["id"], report["id"]],
           "user_id": victims, "report_id": [generated["id"]], "stream_id": [stream["id"]]}
    read_only = {"user_id": [str(u) for u in user_ids.values()], "session_id": sessions,
                 "name": ["results.csv", "results.parquet", "summary.json"]}  # a job's output files
    examples = {**_examples(profile, files), "email": victim_emails, "admin_email": victim_emails,
                "organization_code": [admin.org_code],  # sign-ins that reach real accounts (never the role users)
                **_search_examples(exceptions)}
    pools = seed_pools(document, ids, read_only, examples)
    return tenant, Generator(document, pools)


def _search_examples(exceptions: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Search parameters (issue 16) that find the job's breaks: their keys, prefixes, a full PAN."""
    found: dict[str, list[Any]] = {}
    for name in ("reference", "secondary_reference", "channel"):
        values = [e[name] for e in exceptions if e.get(name)]
        if values:
            found[name] = values + [v.lower() for v in values]
            if name != "channel":
                found[f"{name}_prefix"] = [v[: max(1, len(v) // 2)] for v in values]
    accounts = [e["masked_account"] for e in exceptions if e.get("masked_account")]
    found["account"] = [*accounts, "5399831234567890", "5399 83XX XXXX 7890"]
    return found


def _rule_definition() -> dict[str, Any]:
    rule = rj.profile()["rules"][0]
    return {k: v for k, v in rule.items() if k not in ("name", "version")}


def _approval_examples() -> list[dict[str, Any]]:
    return [
        {"type": "report_generation", "title": "Aging", "description": "month end",
         "metadata": {"report_type": "aging", "format": "csv"}},
        {"type": "ledger_posting", "title": "Suspense", "description": "clear",
         "metadata": {"currency": "NGN", "entries": [{"account": "1001", "direction": "debit", "amount_minor": 5000},
                                                      {"account": "2001", "direction": "credit", "amount_minor": 5000}]}},
        {"type": "system_setting", "title": "Threshold", "description": "money at stake",
         "metadata": {"key": "workflow", "value": {"resolution_approval_threshold": {"NGN": "1000000.00"}}}},
        {"type": "system_setting", "title": "Upload limit", "description": "month end",
         "metadata": {"key": "rate_limits", "value": {"upload": 20, "api": 300}}},
        {"type": "user_onboarding", "title": "New", "description": "audit",
         "metadata": {"email": "new.user@example.com", "name": "Nora New", "role": "auditor"}},
    ]


def _examples(profile: dict[str, Any], files: list[str]) -> dict[str, list[Any]]:
    """Plausible values for free-form fields (objects the schema cannot describe), so damaged
    variants reach the parsers behind them (rules, mappings, approval metadata, job options)."""
    start = rj.start_body(uuid.UUID(files[0]), uuid.UUID(files[1]))
    return {
        "definition": [_rule_definition(), {**_rule_definition(), "rule_type": "fuzzy"}],
        "transformation_rules": [profile["left"]["mapping"], profile["right"]["mapping"]],
        "mapping": [profile["left"]["mapping"], profile["right"]["mapping"]],
        "template_file_id": files,
        "options": [start["options"]],
        "metadata": [a["metadata"] for a in _approval_examples()],
        "rule_ids": [[]],
        "parameters": [{"action": "report.requested"}, {"granularity": "week"}, {}],
        "password_policy": [{"min_length": 12, "history_size": 6}, {"lockout_minutes": 525_600, "history_size": 100},
                            {"lockout_minutes": 10**12}, {"max_age_days": 1}],
    }
