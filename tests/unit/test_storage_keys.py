"""Object keys (spec §6.2): layout, and no way to smuggle a path out of the storage root."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import PurePosixPath

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reckai.domain.ingestion.storage_keys import (
    InvalidStorageKey,
    belongs_to_organization,
    is_quarantined,
    normalized_file_key,
    organization_prefix,
    processed_key,
    quarantine_key,
    report_key,
    upload_key,
    validate_key,
    validate_prefix,
)

ORG = uuid.UUID("6f1c2a4e-0000-4000-8000-000000000001")
FILE = uuid.UUID("6f1c2a4e-0000-4000-8000-0000000000f1")
JOB = uuid.UUID("6f1c2a4e-0000-4000-8000-0000000000a1")


def test_layout_follows_the_spec() -> None:
    day = dt.date(2024, 3, 7)
    assert upload_key(ORG, FILE, day, "CSV") == f"organizations/{ORG}/uploads/2024/03/{FILE}.csv"
    assert processed_key(ORG, JOB, "results", "parquet") == f"organizations/{ORG}/processed/{JOB}/results.parquet"
    assert normalized_file_key(ORG, FILE) == f"organizations/{ORG}/processed/files/{FILE}/normalized.parquet"
    assert normalized_file_key(ORG, FILE, version=3, writer=JOB) == (
        f"organizations/{ORG}/processed/files/{FILE}/normalized-v3-{JOB.hex}.parquet")
    assert normalized_file_key(ORG, FILE, version=2) == f"organizations/{ORG}/processed/files/{FILE}/normalized-v2.parquet"
    for version in (0, -1, True, "2"):
        with pytest.raises(InvalidStorageKey):
            normalized_file_key(ORG, FILE, version=version)  # type: ignore[arg-type]
    assert report_key(ORG, FILE, dt.datetime(2025, 12, 31, 23, 59), ".pdf") == (
        f"organizations/{ORG}/reports/2025/12/{FILE}.pdf"
    )


def test_quarantine_is_outside_the_organization_area() -> None:
    key = quarantine_key(ORG, FILE, dt.date(2024, 1, 2), "xlsx")
    assert key == f"quarantine/{ORG}/2024/01/{FILE}.xlsx"
    assert is_quarantined(key)
    assert not key.startswith(organization_prefix(ORG))
    assert not belongs_to_organization(key, ORG)
    assert belongs_to_organization(upload_key(ORG, FILE, dt.date(2024, 1, 2), "csv"), ORG)
    assert not belongs_to_organization(upload_key(uuid.uuid4(), FILE, dt.date(2024, 1, 2), "csv"), ORG)


def test_ids_are_canonical_uuids() -> None:
    assert upload_key(str(ORG).upper(), FILE.hex, dt.date(2024, 1, 1), "csv") == upload_key(
        ORG, FILE, dt.date(2024, 1, 1), "csv"
    )


@pytest.mark.parametrize("bad_id", ["..", "../../etc", "x", "", f"{ORG}/../other", "00000000-0000-0000-0000-00000000000g"])
def test_non_uuid_ids_are_refused(bad_id: str) -> None:
    with pytest.raises(InvalidStorageKey):
        upload_key(bad_id, FILE, dt.date(2024, 1, 1), "csv")
    with pytest.raises(InvalidStorageKey):
        processed_key(ORG, bad_id, "results", "parquet")


@pytest.mark.parametrize("extension", ["", "../x", "c/v", "toolongextension", "cs v", "ç"])
def test_bad_extensions_are_refused(extension: str) -> None:
    with pytest.raises(InvalidStorageKey):
        upload_key(ORG, FILE, dt.date(2024, 1, 1), extension)


@pytest.mark.parametrize("name", ["", "..", "a/b", "Results", "-x", "a.b"])
def test_bad_processed_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidStorageKey):
        processed_key(ORG, JOB, name, "parquet")


def test_prefixes() -> None:
    assert validate_prefix("") == ""
    assert validate_prefix("organizations/") == "organizations/"
    with pytest.raises(InvalidStorageKey):
        validate_prefix("../")


@given(st.uuids(), st.uuids(), st.dates(), st.from_regex(r"[A-Za-z0-9]{1,10}", fullmatch=True))
def test_every_built_key_is_valid(organization: uuid.UUID, file_id: uuid.UUID, day: dt.date, ext: str) -> None:
    for key in (upload_key(organization, file_id, day, ext), quarantine_key(organization, file_id, day, ext),
                report_key(organization, file_id, day, ext), normalized_file_key(organization, file_id, ext),
                normalized_file_key(organization, file_id, ext, version=7, writer=file_id)):
        assert validate_key(key) == key


@given(st.text(alphabet=st.sampled_from("ab./\\:~ \x00%-_"), max_size=30))
def test_a_valid_key_never_leaves_the_root(text: str) -> None:
    try:
        validate_key(text)
    except InvalidStorageKey:
        return
    path = PurePosixPath("/root") / text
    assert ".." not in path.parts and "." not in text.split("/")
    assert str(path).startswith("/root/")
    assert "\\" not in text and "\x00" not in text and not text.startswith("/")
