"""Fuzzing the file routes (hypothesis) through the in-process TestClient on the in-memory container.

Whatever arrives (random multipart bodies and framings, random Content-Type and other headers,
random JSON and near-valid mappings for /map, random ids and tokens in the path, raw ASGI
requests with lying headers, chunked bodies and clients that disconnect), the answer is never a
5xx, and every error is the envelope `{"success": false, "error": {"code", "message", "details"}}`.

Found and fixed: a client disconnecting mid-body (upload or /map) answered 500 (Litestar raises
InternalServerException for `http.disconnect`); now 400 REQUEST_INTERRUPTED, nothing kept.
"""

from __future__ import annotations

import json
import os
import string
import urllib.parse
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from reckai.adapters.memory.scanner import EICAR, InMemoryScanner
from reckai.application.ports.rate_limit import TIERS
from reckai.bootstrap import Container, bootstrap_in_memory
from reckai.entrypoints.http.app import create_app
from tests.support.files_corpus import EXPLICIT_MAPPING, GOOD_CSV, zip_bomb
from tests.support.identity import bearer, login, onboard

# RECKAI_FUZZ_EXAMPLES=2000 for a longer hunt; the default keeps the suite fast.
FUZZ = settings(max_examples=int(os.environ.get("RECKAI_FUZZ_EXAMPLES", "120")), deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])


MAP_TARGETS = [
    ("bank.csv", GOOD_CSV),
    ("semi.csv", "Date;Narration;Debit;Credit;Currency\n02/01/2024;POS RRN:123456789012;₦1.250,50;;NGN\n"
                 "03/01/2024;TRANSFER;;0,29;NGN\nTOTAL;;1.250,50;0,29;\n".encode()),
    ("ragged.csv", b"date,amount,currency\n2024-01-02,1.00,NGN\n2024-01-03,2.00\n2024-01-04,x,NGN,extra\n"),
    ("s.xml", (b"<Statement><Txn><Date>2024-01-02</Date><Amt Ccy='NGN'>1.50</Amt><Ref>R1</Ref></Txn>"
              b"<Txn><Date>2024-01-03</Date><Amt Ccy='NGN'>-2</Amt><Ref>R2</Ref></Txn></Statement>")),
]
COLUMNS = ["date", "amount", "currency", "reference", "narration", "Date", "Narration", "Debit", "Credit",
           "Currency", "Amt", "Amt/@Ccy", "Ref", "nope", ""]


@dataclass
class Api:
    client: TestClient[Any]
    container: Container
    user_id: uuid.UUID
    token: str
    file_id: str  # a good upload, mapped and re-mapped by the fuzzer
    file_ids: list[str]  # one upload of each of MAP_TARGETS

    def fresh_limits(self) -> None:
        for tier in ("api", "upload"):
            self.container.rate_limiter.reset(TIERS[tier], str(self.user_id))


@pytest.fixture(scope="module")
def api() -> Iterator[Api]:
    container = bootstrap_in_memory(scanner=InMemoryScanner())
    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        _, admin = onboard(client)
        token = login(client, admin.org_code, admin.email, admin.password)
        ids = []
        for name, data in MAP_TARGETS:
            uploaded = client.post("/api/files/upload", data={"file_type": "bank"},
                                   files={"file": (name, data, "application/octet-stream")}, headers=bearer(token))
            assert uploaded.status_code == 201, uploaded.text
            ids.append(uploaded.json()["data"]["id"])
        yield Api(client, container, admin.user_id, token, ids[0], ids)


def assert_enveloped(response: Any) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:500])
    if response.headers.get("content-type", "").startswith("application/octet-stream"):
        assert response.status_code == 200
        return
    body = response.json()
    if response.status_code >= 400:
        assert body["success"] is False, body
        error = body["error"]
        assert isinstance(error["code"], str) and error["code"], body
        assert isinstance(error["message"], str) and error["message"], body
        assert isinstance(error["details"], list), body
        assert all(isinstance(d, dict) and {"field", "message"} <= set(d) for d in error["details"]), body
    else:
        assert body["success"] is True and "data" in body, body


# --- strategies ------------------------------------------------------------------------------

_HEADER_TEXT = st.text(alphabet=string.printable.replace("\r", "").replace("\n", "").replace("\x0b", "")
                       .replace("\x0c", ""), max_size=60)
_BOUNDARY = st.one_of(st.just("fuzz-boundary"), st.text(alphabet=string.ascii_letters + string.digits + "'()+_,-./:=? ",
                                                         min_size=1, max_size=80))
_FIELD_NAMES = st.sampled_from(["file", "file_type", "job_id", "", "FILE", "file[]", "x" * 300, 'a"b', "é"])
_FILENAMES = st.one_of(st.none(), st.sampled_from(["bank.csv", "", "../../etc/passwd", "a.xlsx", "a.xml", "é.csv",
                                                   "x" * 400, 'q"uote.csv', "nul\x00.csv", "a.CSV"]),
                       _HEADER_TEXT)
_FILE_CONTENT = st.one_of(st.binary(max_size=300), st.sampled_from([GOOD_CSV, EICAR, b"", b"PK\x03\x04" + bytes(40),
                                                                   b"<?xml version='1.0'?><a/>", b"\xff\xfe\x00"]))
_FIELD_VALUES = st.one_of(st.sampled_from([b"bank", b"gl", b"BANK", b"", str(uuid.uuid4()).encode(), b"\xff\xfe"]),
                          st.binary(max_size=40))


_ODD_PART_HEADERS = [
    "", "Content-Disposition: attachment\r\n", "Content-Disposition: form-data\r\n",
    "Content-Disposition: form-data; name*=UTF-8''f%C3%A9\r\n",
    "Content-Disposition: form-data; name=\"file\"; filename*=UTF-8''%E2%82%A6.csv\r\n",
    "Content-Disposition: form-data; name=file; filename=a.csv\r\n",
    "garbage without a colon\r\n", "Content-Disposition: form-data; name=\"file_type\"\r\n folded\r\n",
    "X-Long: " + "a" * 5000 + "\r\n", "".join(f"X-{i}: v\r\n" for i in range(12)),
    "Content-Disposition: form-data; name=\"file\"; filename=\"a.csv\"\r\nContent-Transfer-Encoding: base64\r\n",
]


@st.composite
def multipart_bodies(draw: st.DrawFn) -> tuple[bytes, str]:
    """A body and its Content-Type: usually well-framed parts in random order and content, sometimes
    framing damage (truncation, missing closing boundary, junk) or plain random bytes."""
    boundary = draw(st.sampled_from(["fuzz-boundary", "----WebKitFormBoundary7MA4YWxkTrZu0gW"] * 4) | _BOUNDARY)
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=400)), f"multipart/form-data; boundary={boundary}"
    parts = draw(st.lists(st.tuples(_FIELD_NAMES, _FILENAMES, st.one_of(_FIELD_VALUES, _FILE_CONTENT)),
                          max_size=5))
    if draw(st.booleans()):  # mostly-valid: the fields then the file
        fields = [("file_type", None, draw(st.sampled_from([b"bank", b"gl"]) | _FIELD_VALUES))]
        if draw(st.booleans()):
            fields.append(("job_id", None, draw(st.sampled_from([str(uuid.uuid4()).encode(), b"", b"nope"]))))
        parts = [*fields, *parts[:1], ("file", draw(_FILENAMES) or "f.csv", draw(_FILE_CONTENT))]
    out = bytearray(draw(st.sampled_from([b"", b"preamble\r\n", b"\r\n"])))
    for name, filename, value in parts:
        out += f"--{boundary}\r\n".encode("utf-8", "surrogatepass")
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
        out += draw(st.sampled_from([f"Content-Disposition: {disposition}\r\n"] * 6 + _ODD_PART_HEADERS)).encode(
            "utf-8", "surrogatepass")
        if draw(st.booleans()):
            out += f"Content-Type: {draw(_HEADER_TEXT)}\r\n".encode()
        out += b"\r\n" + value + b"\r\n"
    ending = draw(st.sampled_from(["close", "none", "truncate", "junk"]))
    if ending == "close":
        out += f"--{boundary}--\r\n".encode()
    elif ending == "truncate" and out:
        out = out[: draw(st.integers(0, len(out)))]
    elif ending == "junk":
        out += draw(st.binary(max_size=60))
    content_type = draw(st.sampled_from([f"multipart/form-data; boundary={boundary}"] * 12 + [
        f'multipart/form-data; boundary="{boundary}"',
        "multipart/form-data", "multipart/form-data; boundary=", "multipart/mixed; boundary=" + boundary,
        "application/json", "text/plain", f"multipart/form-data; charset=utf-8; boundary={boundary}",
        "MULTIPART/FORM-DATA; BOUNDARY=" + boundary,
    ]))
    if draw(st.integers(0, 9)) == 0:
        content_type = "multipart/form-data; " + draw(_HEADER_TEXT)
    return bytes(out), content_type


_EXTRA_HEADERS = st.dictionaries(
    st.sampled_from(["X-Request-ID", "Accept", "Accept-Encoding", "User-Agent", "X-Forwarded-For", "Origin",
                     "Content-Language", "Range", "If-None-Match", "Cookie"]),
    _HEADER_TEXT, max_size=4)

_AUTH = st.integers(0, 9).flatmap(lambda n: st.just("valid") if n < 7 else st.sampled_from([None, "Bearer "])
                                  | _HEADER_TEXT.map(lambda t: "Bearer " + t) | _HEADER_TEXT)

_JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20)),
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.text(max_size=12), children, max_size=4)),
    max_leaves=20,
)
_MAPPING_KEYS = st.sampled_from(["parse", "fields", "amount", "direction", "currency", "transaction_date",
                                 "reference", "column", "constant", "formats", "delimiter", "format", "regex",
                                 "scale", "sign", "value_map", "debit_column", "credit_column", "header_row"])
_MAPPING_LIKE = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20), st.text(max_size=12),
              st.sampled_from(["amount", "date", "%Y-%m-%d", "%d/%m/%Y", ",", ";", "csv", "(", "[", "debit"])),
    lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(_MAPPING_KEYS, children, max_size=4)),
    max_leaves=25,
)
_MAP_BODIES = st.one_of(
    st.builds(lambda rules, allow: {"transformation_rules": rules, "allow_row_errors": allow},
              _MAPPING_LIKE, st.one_of(st.booleans(), _JSON)),
    st.builds(lambda fields: {"transformation_rules": {**EXPLICIT_MAPPING, "fields": fields}},
              st.dictionaries(_MAPPING_KEYS, _MAPPING_LIKE, max_size=5)),
    _JSON,
)

_TEXTY = st.one_of(st.text(max_size=12), st.sampled_from(["(", "[", "\\", "(?=x)(\\d+)", "RRN:(\\d{6,12})", "(.*)",
                                                          "%Y-%m-%d", "%d/%m/%Y", "%Q", "%", "%H:%M", "₦", "NGN", "TAB",
                                                          "\\t", ",", ";", "|", ".", ""]))
_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-(10**20), 10**20), _TEXTY)
_COLUMN = st.one_of(st.sampled_from(COLUMNS), st.text(max_size=8))


BASE_MAPPINGS: list[dict[str, Any]] = [
    EXPLICIT_MAPPING,
    {"parse": {"format": "csv", "delimiter": ";"},
     "fields": {"amount": {"debit_column": "Debit", "credit_column": "Credit", "decimal_separator": ",",
                           "strip": ["₦"]},
                "currency": {"column": "Currency"}, "transaction_date": {"column": "Date", "formats": ["%d/%m/%Y"]},
                "reference": {"column": "Narration", "regex": "RRN:(\\d+)"}}},
    {"parse": {"format": "csv"},
     "fields": {"amount": {"column": "amount"}, "direction": {"from_sign": {}}, "currency": {"column": "currency"},
                "transaction_date": {"column": "date"}}},
    {"parse": {"format": "xml", "row_path": "Statement/Txn"},
     "fields": {"amount": {"column": "Amt"}, "direction": {"from_sign": {}}, "currency": {"column": "Amt/@Ccy"},
                "transaction_date": {"column": "Date"}, "reference": {"column": "Ref"}}},
]
_KEY_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "column": _COLUMN, "regex": _TEXTY, "trim": _SCALARS, "upper": _SCALARS, "default": _SCALARS,
    "value_map": st.one_of(st.dictionaries(_TEXTY, _TEXTY, max_size=3), _SCALARS),
    "constant": st.one_of(st.sampled_from(["debit", "credit", "NGN", "USD", "success", "x"]), _SCALARS),
    "decimal_separator": st.one_of(st.sampled_from([",", ".", "", "ab"]), _SCALARS),
    "thousands_separator": st.one_of(st.sampled_from([",", ".", " ", "", None]), _SCALARS),
    "strip": st.one_of(st.lists(_TEXTY, max_size=3), _SCALARS),
    "scale": st.one_of(st.sampled_from(["major", "minor"]), _SCALARS),
    "formats": st.one_of(st.lists(_TEXTY, max_size=3), _SCALARS),
    "time_column": _COLUMN, "time_formats": st.one_of(st.lists(_TEXTY, max_size=2), _SCALARS),
    "from_sign": st.one_of(st.dictionaries(st.sampled_from(["negative", "positive"]),
                                           st.sampled_from(["debit", "credit", "x"]), max_size=2), _SCALARS),
    "debit_column": _COLUMN, "credit_column": _COLUMN,
    "coalesce": st.lists(st.fixed_dictionaries({"column": _COLUMN}, optional={"regex": _TEXTY}), max_size=2),
}
_PARSE_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "format": st.one_of(st.sampled_from(["csv", "txt", "xlsx", "xls", "xml", "mt940", "camt053"]), _SCALARS),
    "delimiter": _SCALARS, "encoding": st.one_of(st.sampled_from(["utf-8", "utf-16", "windows-1252"]), _SCALARS),
    "header_row": st.one_of(st.integers(-3, 80), _SCALARS), "sheet": _SCALARS,
    "row_path": st.one_of(st.sampled_from(["Statement/Txn", "//Txn", "Txn", "/", "//", "Amt"]), _SCALARS),
    "skip_footer_pattern": _TEXTY,
}
_FIELDS = ["amount", "direction", "currency", "transaction_date", "value_date", "reference", "secondary_reference",
           "description", "channel", "account", "status", "counterparty"]


@st.composite
def plausible_mappings(draw: st.DrawFn, target: int) -> dict[str, Any]:
    """The target file's valid mapping with a few keys changed, added or removed: most reach the
    normalizer, many then fail a row or the whole file."""
    rules = json.loads(json.dumps(BASE_MAPPINGS[target]))
    for _ in range(draw(st.integers(0, 3))):
        if draw(st.integers(0, 3)) == 0:
            key = draw(st.sampled_from(sorted(_PARSE_VALUES)))
            rules.setdefault("parse", {})[key] = draw(_PARSE_VALUES[key])
            continue
        field = draw(st.sampled_from(_FIELDS))
        spec = rules["fields"].setdefault(field, {})
        action = draw(st.sampled_from(["set", "set", "drop_key", "drop_field"]))
        if action == "set":
            key = draw(st.sampled_from(sorted(_KEY_VALUES)))
            spec[key] = draw(_KEY_VALUES[key])
        elif action == "drop_key" and spec:
            spec.pop(draw(st.sampled_from(sorted(spec))))
        else:
            rules["fields"].pop(field, None)
    return rules  # type: ignore[no-any-return]


@st.composite
def file_contents(draw: st.DrawFn) -> tuple[str, bytes]:
    """A file name and content shaped like what the readers expect, then damaged at random."""
    kind = draw(st.sampled_from(["csv", "xml", "xlsx", "xls", "mt940", "binary"]))
    if kind == "csv":
        delimiter = draw(st.sampled_from([",", ";", "|", "\t", " "]))
        cells = st.one_of(st.sampled_from(["2024-01-02", "02/01/2024", "1,250.50", "(3.00)", "-0.29", "NGN", "₦5",
                                           "123456789012", '"a,b"', '"', "", "TOTAL", "DR", "CR"]),
                          st.text(max_size=10))
        rows = draw(st.lists(st.lists(cells, min_size=1, max_size=6), max_size=8))
        text = "\n".join(delimiter.join(row) for row in [["date", "amount", "currency"], *rows])
        encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "cp1252"]))
        data = text.encode(encoding, errors="replace")
        name = draw(st.sampled_from(["a.csv", "a.txt", "a", "a.CSV"]))
    elif kind == "xml":
        inner = draw(st.lists(st.sampled_from(["<Txn>", "</Txn>", "<Amt Ccy='NGN'>1.00</Amt>", "<Date>2024-01-02</Date>",
                                               "<!-- c -->", "<![CDATA[x]]>", "&amp;", "&bogus;", "<a b='1'/>"]),
                              max_size=12))
        data = ("<?xml version='1.0'?><Statement>" + "".join(inner) + draw(st.sampled_from(["</Statement>", ""]))).encode()
        name = draw(st.sampled_from(["a.xml", "a.csv", "camt.053.xml"]))
    elif kind == "xlsx":
        import io
        import zipfile

        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for member in draw(st.lists(st.sampled_from(["[Content_Types].xml", "xl/workbook.xml",
                                                          "xl/worksheets/sheet1.xml", "xl/sharedStrings.xml",
                                                          "_rels/.rels", "x.bin"]), unique=True, max_size=5)):
                archive.writestr(member, draw(st.binary(max_size=80)))
        data = buffer.getvalue()
        name = draw(st.sampled_from(["a.xlsx", "a.csv", "a.zip"]))
    elif kind == "xls":
        data = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + draw(st.binary(max_size=200))
        name = "a.xls"
    elif kind == "mt940":
        lines = draw(st.lists(st.sampled_from([":20:REF", ":25:0123456789", ":28C:1/1", ":60F:C240102NGN1000,00",
                                                ":61:2401020102D1250,50NTRFNONREF//123", ":86:POS RRN:123456789012",
                                                ":62F:C240102NGN0,00", "-}", "{1:F01}", ":61:junk"]), max_size=10))
        data = "\r\n".join(lines).encode()
        name = draw(st.sampled_from(["a.sta", "a.mt940", "a.txt"]))
    else:
        data = draw(st.binary(max_size=300))
        name = draw(st.sampled_from(["a.csv", "a.xlsx", "a.bin"]))
    if draw(st.integers(0, 4)) == 0 and data:  # damage: cut it short
        data = data[: draw(st.integers(0, len(data)))]
    return name, data


_IDS = st.one_of(st.uuids().map(str), st.text(max_size=40), st.sampled_from(["", ".", "..", "%00", "upload",
                                                                              "download", "0" * 36]))


def _headers(api: Api, auth: str | None, extra: dict[str, str]) -> dict[str, str]:
    headers = dict(extra)
    if auth == "valid":
        headers.update(bearer(api.token))
    elif auth is not None:
        headers["Authorization"] = auth
    return headers


# --- the fuzz tests --------------------------------------------------------------------------

@FUZZ
@given(body=multipart_bodies(), auth=_AUTH, extra=_EXTRA_HEADERS)
def test_upload_never_5xx(api: Api, body: tuple[bytes, str], auth: str | None, extra: dict[str, str]) -> None:
    api.fresh_limits()
    content, content_type = body
    response = api.client.post("/api/files/upload", content=content,
                               headers={**_headers(api, auth, extra), "Content-Type": content_type})
    assert_enveloped(response)


@FUZZ
@given(body=_MAP_BODIES, own_file=st.booleans(), auth=_AUTH, extra=_EXTRA_HEADERS,
       content_type=st.sampled_from(["application/json", "application/json; charset=utf-8",
                                     "application/vnd.x+json", "text/plain", None]))
def test_map_never_5xx(api: Api, body: Any, own_file: bool, auth: str | None, extra: dict[str, str],
                       content_type: str | None) -> None:
    api.fresh_limits()
    file_id = api.file_id if own_file else str(uuid.uuid4())
    headers = _headers(api, auth, extra)
    if content_type:
        headers["Content-Type"] = content_type
    response = api.client.post(f"/api/files/{file_id}/map", content=json.dumps(body).encode(), headers=headers)
    assert_enveloped(response)


@FUZZ
@given(file=file_contents(), file_type=st.sampled_from(["bank", "settlement", "switch", "card", "gl"]))
def test_upload_of_random_content_never_5xx(api: Api, file: tuple[str, bytes], file_type: str) -> None:
    """A valid form whose file is fuzzed: every reader, the sniffing and the auto-detection run."""
    api.fresh_limits()
    name, data = file
    response = api.client.post("/api/files/upload", data={"file_type": file_type},
                               files={"file": (name, data, "application/octet-stream")}, headers=bearer(api.token))
    assert_enveloped(response)
    if response.status_code == 201:  # keep the organization's storage small
        api.client.delete(f"/api/files/{response.json()['data']['id']}", headers=bearer(api.token))


@FUZZ
@given(data=st.data(), target=st.integers(0, len(MAP_TARGETS) - 1), allow=st.booleans())
def test_map_with_plausible_mappings_never_5xx(api: Api, data: st.DataObject, target: int, allow: bool) -> None:
    """Mappings close enough to valid that many reach the normalizer, over CSV, ragged and XML files."""
    rules = data.draw(plausible_mappings(target))
    api.fresh_limits()
    response = api.client.post(f"/api/files/{api.file_ids[target]}/map",
                               json={"transformation_rules": rules, "allow_row_errors": allow},
                               headers=bearer(api.token))
    assert_enveloped(response)


@FUZZ
@given(raw=st.binary(max_size=200))
def test_map_with_a_body_that_is_not_json_never_5xx(api: Api, raw: bytes) -> None:
    api.fresh_limits()
    response = api.client.post(f"/api/files/{api.file_id}/map", content=raw,
                               headers={**bearer(api.token), "Content-Type": "application/json"})
    assert_enveloped(response)


@FUZZ
@given(file_id=_IDS, method=st.sampled_from(["GET", "DELETE", "POST", "PUT", "PATCH"]),
       suffix=st.sampled_from(["", "/download", "/map", "/", "/x"]), auth=_AUTH, extra=_EXTRA_HEADERS)
def test_random_ids_and_methods_never_5xx(api: Api, file_id: str, method: str, suffix: str, auth: str | None,
                                          extra: dict[str, str]) -> None:
    api.fresh_limits()
    path = f"/api/files/{urllib.parse.quote(file_id, safe='')}{suffix}"
    if file_id == api.file_id and method == "DELETE":
        return  # keep the shared file
    response = api.client.request(method, path, headers=_headers(api, auth, extra),
                                  content=b"{}" if method in ("POST", "PUT", "PATCH") else None)
    assert_enveloped(response)


@FUZZ
@given(token=st.one_of(st.text(max_size=200), st.binary(max_size=120).map(lambda b: b.hex())),
       extra=_EXTRA_HEADERS)
def test_download_tokens_never_5xx(api: Api, token: str, extra: dict[str, str]) -> None:
    response = api.client.get(f"/api/files/download/{urllib.parse.quote(token, safe='')}", headers=extra)
    assert_enveloped(response)


def test_a_zip_bomb_and_a_virus_in_the_fuzzed_path_are_envelopes_too(api: Api) -> None:
    for name, data in (("a.xlsx", zip_bomb(16)), ("a.csv", EICAR)):
        api.fresh_limits()
        response = api.client.post("/api/files/upload", data={"file_type": "bank"},
                                   files={"file": (name, data, "application/octet-stream")}, headers=bearer(api.token))
        assert response.status_code == 422
        assert_enveloped(response)


_RAW_HEADER_VALUE = st.one_of(st.binary(max_size=40).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")),
                              st.sampled_from([b"-1", b"0", b"abc", b"99999999999999999999", b"1e3", b" 12 ",
                                               b"chunked", b"gzip"]))


@FUZZ
@given(body=multipart_bodies(), cuts=st.lists(st.integers(0, 2000), max_size=6), disconnect=st.booleans(),
       extra=st.lists(st.tuples(st.sampled_from([b"content-length", b"transfer-encoding", b"content-type",
                                                 b"content-encoding", b"expect", b"x-request-id"]),
                                _RAW_HEADER_VALUE), max_size=3))
def test_raw_asgi_uploads_never_5xx(api: Api, body: tuple[bytes, str], cuts: list[int], disconnect: bool,
                                    extra: list[tuple[bytes, bytes]]) -> None:
    """At the ASGI level, below any HTTP client's sanity: raw header bytes (lying or malformed
    Content-Length, Transfer-Encoding ...), the body in random chunks, and a client that may
    disconnect half-way. A response, if one is sent, is never a 5xx."""
    api.fresh_limits()
    content, content_type = body
    points = sorted({min(c, len(content)) for c in cuts})
    chunks = [content[a:b] for a, b in zip([0, *points], [*points, len(content)], strict=True)]
    events: list[dict[str, Any]] = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
                                    for i, c in enumerate(chunks)]
    if disconnect:
        events = events[: max(1, len(events) // 2)]
        events[-1] = {**events[-1], "more_body": True}
        events.append({"type": "http.disconnect"})
    status, payload = _asgi_post(api, "/api/files/upload", content_type, events, extra)
    assert status is not None or disconnect, "no response"
    assert status is None or status < 500, (status, payload)
    if status is not None and status >= 400:
        assert payload["success"] is False and {"code", "message", "details"} <= set(payload["error"])


def _asgi_post(api: Api, path: str, content_type: str, events: list[dict[str, Any]],
               extra: Sequence[tuple[bytes, bytes]] = ()) -> tuple[int | None, Any]:
    """POST straight into the ASGI app with these receive events; (status, decoded JSON body)."""
    import anyio

    sent: list[dict[str, Any]] = []
    pending = list(events)

    async def receive() -> dict[str, Any]:
        if pending:
            return pending.pop(0)
        await anyio.lowlevel.checkpoint()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    headers = [(b"host", b"testserver"), (b"authorization", f"Bearer {api.token}".encode()),
               (b"content-type", content_type.encode("latin-1", "replace")), *extra]
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "client": ("127.0.0.1", 5000), "server": ("testserver", 80), "state": {}, "headers": headers}
    anyio.run(api.client.app, scope, receive, send)
    starts = [m for m in sent if m["type"] == "http.response.start"]
    if not starts:
        return None, None
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return int(starts[0]["status"]), json.loads(body) if body else None


def _org_keys(api: Api) -> list[str]:
    return [k for k in api.container.storage.list_keys("organizations/") if "/uploads/" in k]


def test_a_client_that_disconnects_while_the_file_streams_gets_400_and_nothing_is_kept(api: Api) -> None:
    """Found by the raw-ASGI fuzzer: Litestar reports `http.disconnect` as a 500; it is the client's
    doing (400 REQUEST_INTERRUPTED) and leaves no object and no row."""
    api.fresh_limits()
    before = _org_keys(api)
    head = (b'--b\r\nContent-Disposition: form-data; name="file_type"\r\n\r\nbank\r\n'
            b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n\r\n')
    events: list[dict[str, Any]] = [{"type": "http.request", "body": head, "more_body": True},
              {"type": "http.request", "body": GOOD_CSV, "more_body": True}, {"type": "http.disconnect"}]
    status, payload = _asgi_post(api, "/api/files/upload", "multipart/form-data; boundary=b", events)
    assert status == 400 and payload["error"]["code"] == "REQUEST_INTERRUPTED", payload
    assert _org_keys(api) == before


def test_a_client_that_disconnects_while_sending_the_mapping_gets_400(api: Api) -> None:
    events: list[dict[str, Any]] = [{"type": "http.request", "body": b'{"transformation_rules": {"parse"', "more_body": True},
              {"type": "http.disconnect"}]
    status, payload = _asgi_post(api, f"/api/files/{api.file_id}/map", "application/json", events)
    assert status == 400 and payload["error"]["code"] == "REQUEST_INTERRUPTED", payload
