"""Issue 16 item 3, exception search: the search keys (domain/exceptions/search.py and their polars
twin), how a job's exceptions get them, and the filters of GET /api/exceptions and its export on
the in-memory container (tests/integration/test_exception_search_postgres.py: PostgreSQL, the
migration's back-fill and the index plans)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from reckai.adapters.polars.search_keys import (
    SEARCH_PREFIX,
    key_sources,
    masked_account_candidates,
    masked_account_expr,
    search_key_expr,
    with_search_keys,
)
from reckai.application.ports.audit import AuditQuery
from reckai.bootstrap import Container, bootstrap_in_memory
from reckai.domain.exceptions.lifecycle import ExceptionItem
from reckai.domain.exceptions.policy import SlaPolicy
from reckai.domain.exceptions.search import masked_account, prefix_upper_bound, search_key
from reckai.entrypoints.http.app import create_app
from tests.support.identity import bearer, login, onboard

# --- the keys -----------------------------------------------------------------------------------

_PAN_RUN = re.compile(r"(?<![0-9])[0-9]{13,19}(?![0-9])")


@pytest.mark.parametrize(("given_value", "expected"), [
    ("5399831234567890", "539983******7890"),
    ("5399 8312 3456 7890", "539983******7890"),
    ("5399-8312-3456-7890", "539983******7890"),
    ("539983XXXXXX7890", "539983******7890"),
    ("539983######7890", "539983******7890"),
    ("539983******7890", "539983******7890"),
    ("4111111111111", "411111***1111"),  # 13 digits
    ("6011000000000000004", "601100*********0004"),  # 19 digits
    ("12345678901234567890", "12345678901234567890"),  # 20 digits: not a card number
    ("0123456789", "0123456789"),  # a NUBAN account number stays as it is
    ("card 5399831234567890 / 4111111111111111", "CARD539983******7890/411111******1111"),
    ("  ", None), (None, None),
])
def test_masked_account_never_keeps_a_card_number_whole(given_value: str | None, expected: str | None) -> None:
    assert masked_account(given_value) == expected


def test_search_key_and_like_prefix() -> None:
    assert search_key("  ft2301ab ") == "FT2301AB"
    assert search_key("") is None and search_key(None) is None
    assert search_key("x" * 400) == "X" * 255
    assert prefix_upper_bound("5617") == "5618" and prefix_upper_bound("AZ") == "A["
    assert prefix_upper_bound("A\U0010ffff") == "B" and prefix_upper_bound("\U0010ffff") is None
    assert prefix_upper_bound("\ud7ff") == "\ue000"


@settings(max_examples=300, deadline=None, database=None)
@given(prefix=st.text(min_size=1, max_size=4), rest=st.text(max_size=4), other=st.text(max_size=6))
def test_property_the_prefix_range_is_exactly_the_prefix(prefix: str, rest: str, other: str) -> None:
    bound = prefix_upper_bound(prefix)

    def in_range(value: str) -> bool:  # COLLATE "C" compares UTF-8 bytes
        encoded = value.encode("utf-8", "surrogatepass")
        return prefix.encode("utf-8", "surrogatepass") <= encoded and (
            bound is None or encoded < bound.encode("utf-8", "surrogatepass"))

    assert in_range(prefix + rest)
    assert in_range(other) == other.startswith(prefix)


_TEXT = st.text(alphabet="0123456789 -*X#xab/", max_size=60) | st.from_regex(r"[0-9]{10,22}", fullmatch=True)


@settings(max_examples=300, deadline=None, database=None)
@given(values=st.lists(st.none() | _TEXT, min_size=1, max_size=20))
def test_property_the_polars_keys_are_the_domain_keys(values: list[str | None]) -> None:
    frame = pl.DataFrame({"v": values}, schema={"v": pl.String})
    out = frame.select(masked_account_expr(pl.col("v")).alias("m"), search_key_expr(pl.col("v")).alias("k"))
    assert out["m"].to_list() == [masked_account(v) for v in values]
    assert out["k"].to_list() == [search_key(v) for v in values]
    for key in out["m"].to_list():
        assert key is None or not _PAN_RUN.search(key), key  # no card number survives


@settings(max_examples=200, deadline=None, database=None)
@given(values=st.lists(st.none() | _TEXT, min_size=1, max_size=20), other=_TEXT)
def test_property_the_cheap_account_test_never_drops_a_match(values: list[str | None], other: str) -> None:
    frame = pl.DataFrame({"v": values}, schema={"v": pl.String})
    for key in {masked_account(v) for v in [*values, other]} - {None}:
        assert key is not None
        kept = frame.select(masked_account_candidates(pl.col("v"), key).fill_null(False).alias("c"))["c"].to_list()
        for value, candidate in zip(values, kept, strict=True):
            assert candidate or masked_account(value) != key, (value, key)


def test_a_job_exceptions_get_the_keys_of_their_rows() -> None:
    rows = {"row_number": [1, 2, 3], "reference": ["rrn1", "rrn2", " "], "secondary_reference": ["s1", None, "s3"],
            "account": ["5399831234567890", None, "0123456789"], "channel": ["pos", "web", None]}
    left = pl.DataFrame(rows, schema={"row_number": pl.Int64, **dict.fromkeys(list(rows)[1:], pl.String)})
    right = left.with_columns(pl.col("reference").replace({"rrn2": "RRN2", "rrn1": "other1"}),
                              pl.col("channel").replace({"pos": "atm"}))
    exceptions = pl.DataFrame({"type": ["a", "b", "c", "d"], "reference": ["evidence", None, None, None],
                               "left_row": [1, None, 2, 3], "right_row": [1, 2, 2, None]},
                              schema={"type": pl.String, "reference": pl.String, "left_row": pl.Int32,
                                      "right_row": pl.Int32})
    out = with_search_keys(exceptions, key_sources(left), key_sources(right))
    assert out["reference"].to_list() == ["evidence", None, None, None]  # the evidence's own column is kept
    keys = out.select(pl.col(f"{SEARCH_PREFIX}reference"), pl.col(f"{SEARCH_PREFIX}reference_other"),
                      pl.col(f"{SEARCH_PREFIX}masked_account"), pl.col(f"{SEARCH_PREFIX}channel")).rows()
    assert keys == [("RRN1", "OTHER1", "539983******7890", "POS"),  # a pair with two references: both kept
                    ("RRN2", None, None, "WEB"),  # the right row alone
                    ("RRN2", None, None, "WEB"),  # the same reference on both sides: no "other"
                    (None, None, "0123456789", None)]


# --- the filters over HTTP (memory) ------------------------------------------------------------

BASE = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


SPECS: list[tuple[str, dict[str, Any]]] = [
    ("rrn", {"reference": "561760235452", "secondary_reference": "004512", "masked_account": "539983******7890",
                 "channel": "POS", "amount": Decimal("1500.00"), "transaction_date": dt.date(2026, 2, 3)}),
    ("other_side", {"reference": "FT2301", "reference_other": "561760999999", "channel": "ATM",
                        "amount": Decimal("-20.00"), "transaction_date": dt.date(2026, 2, 10)}),
    ("stan", {"secondary_reference": "004599", "secondary_reference_other": "777001", "channel": "WEB",
                  "amount": Decimal("99.99"), "transaction_date": dt.date(2026, 2, 20)}),
    ("wild", {"reference": "10%_OFF", "amount": None}),
    ("none", {"amount": Decimal("5.00")}),
]
# (query string, the SPECS names it finds): the same table runs on PostgreSQL
FILTER_CASES: list[tuple[str, set[str]]] = [
    ("reference=561760235452", {"rrn"}),
    ("reference=ft2301", {"other_side"}),  # case ignored
    ("reference=561760999999", {"other_side"}),  # the pair's other row
    ("reference_prefix=5617602", {"rrn"}),
    ("reference_prefix=561760", {"rrn", "other_side"}),
    ("reference_prefix=10%25_", {"wild"}),  # % and _ are characters, not wildcards
    ("reference_prefix=1", {"wild"}),
    ("reference=56176023545", set()),  # exact means exact
    ("secondary_reference=004512", {"rrn"}),
    ("secondary_reference=777001", {"stan"}),
    ("secondary_reference_prefix=0045", {"rrn", "stan"}),
    ("account=539983******7890", {"rrn"}),
    ("account=5399831234567890", {"rrn"}),  # a pasted full PAN is masked first
    ("account=5399 83XX XXXX 7890", {"rrn"}),
    ("channel=pos", {"rrn"}),
    ("channel=POS,web", {"rrn", "stan"}),
    ("amount_min=20&amount_max=100", {"other_side", "stan"}),
    ("date_from=2026-02-05&date_to=2026-02-28", {"other_side", "stan"}),
    ("reference_prefix=561760&channel=ATM&amount_min=10", {"other_side"}),
]


def seed(container: Container, organization_id: uuid.UUID, job: uuid.UUID) -> dict[str, uuid.UUID]:
    """SPECS as exceptions of `job` (a job row must exist on PostgreSQL)."""
    made = {}
    with container.database.unit_of_work(organization_id) as uow:
        for index, (name, fields) in enumerate(SPECS):
            item = ExceptionItem.new(organization_id=organization_id, job_id=job, type="missing_entry",
                                     severity="low", description=name, created_at=BASE + dt.timedelta(hours=index),
                                     sla=SlaPolicy(), **fields)
            uow.exceptions.add(item)
            made[name] = item.id
        uow.commit()
    return made


@pytest.fixture(scope="module")
def api() -> Iterator[tuple[TestClient, dict[str, str], Container, dict[str, uuid.UUID]]]:
    container = bootstrap_in_memory()
    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        organization_id, admin = onboard(client)
        headers = bearer(login(client, admin.org_code, admin.email, admin.password))
        made = seed(container, organization_id, uuid.uuid4())
        made["organization"] = organization_id
        yield client, headers, container, made


def names_found(client: TestClient, headers: dict[str, str], query: str) -> set[str]:
    answer = client.get(f"/api/exceptions?per_page=100&{query}", headers=headers)
    assert answer.status_code == 200, answer.text
    return {item["description"] for item in answer.json()["data"]}


@pytest.mark.parametrize(("query", "expected"), FILTER_CASES)
def test_filters(api: Any, query: str, expected: set[str]) -> None:
    client, headers, _, _ = api
    assert names_found(client, headers, query) == expected


def test_the_answer_shows_the_keys(api: Any) -> None:
    client, headers, _, made = api
    item = client.get(f"/api/exceptions/{made['rrn']}", headers=headers).json()["data"]["exception"]
    assert (item["reference"], item["secondary_reference"], item["masked_account"], item["channel"]) == (
        "561760235452", "004512", "539983******7890", "POS")


@pytest.mark.parametrize("query", ["reference=", "reference_prefix=%20", "secondary_reference=", "account=",
                                   "channel=,", "reference=" + "1" * 256])
def test_an_empty_or_too_long_search_value_is_a_400(api: Any, query: str) -> None:
    client, headers, _, _ = api
    answer = client.get(f"/api/exceptions?{query}", headers=headers)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["details"][0]["field"] == query.split("=")[0]


def test_the_export_takes_the_same_filters_and_audits_the_masked_account(api: Any) -> None:
    client, headers, container, made = api
    answer = client.get("/api/exceptions/export?format=csv&reference_prefix=561760&account=5399831234567890",
                        headers=headers)
    assert answer.status_code == 200, answer.text
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert [(r["description"], r["reference"], r["masked_account"]) for r in rows] == [
        ("rrn", "561760235452", "539983******7890")]
    assert client.get("/api/exceptions/export?refrence=561760", headers=headers).status_code == 400
    records = container.audit_log.list_records(made["organization"], AuditQuery(action="exception.exported")).records
    filters = records[-1].event.metadata["filters"]
    assert filters == {"reference_prefix": "561760", "account": "539983******7890"}  # never the full PAN
