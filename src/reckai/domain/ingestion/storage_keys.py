"""Object keys in file storage (spec §6.2), as pure functions.

    organizations/{org_id}/uploads/{yyyy}/{mm}/{file_id}.{ext}
    organizations/{org_id}/processed/{job_id}/{name}.{ext}           a job's results
    organizations/{org_id}/processed/files/{file_id}/normalized.{ext} a file's normalized form
    organizations/{org_id}/processed/files/{file_id}/normalized-v{n}-{id}.{ext} its version n >= 2 (a re-map)
    organizations/{org_id}/reports/{yyyy}/{mm}/{report_id}.{ext}
    quarantine/{org_id}/{yyyy}/{mm}/{file_id}.{ext}                    infected uploads, outside the
                                                                       organization's normal area

Every id is parsed as a UUID and written in its canonical lowercase form, every extension and name
is checked against a short alphabet, so no caller-supplied text can smuggle `..`, `/` or a drive
letter into a key. `validate_key` is what storage adapters call on any key before touching a disk
or a bucket.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid

ORGANIZATIONS_ROOT = "organizations"
QUARANTINE_ROOT = "quarantine"
# Files without a job keep their normalized form under processed/files/{file_id}/: the literal
# "files" segment can never collide with a job id, which is always a UUID.
NORMALIZED_FILES_SEGMENT = "files"

MAX_KEY_LENGTH = 1024  # S3's limit, in UTF-8 bytes; keys here are ASCII
_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")
_EXTENSION = re.compile(r"[a-z0-9]{1,10}")
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


class InvalidStorageKey(ValueError):
    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"invalid storage key {key!r}: {reason}")
        self.key = key
        self.reason = reason


def validate_key(key: str) -> str:
    """Return `key` unchanged if it is a safe relative object key, else raise InvalidStorageKey.

    Safe means: ASCII segments of letters, digits, `.`, `_`, `-`, each starting with a letter or
    digit (so no `.`, `..` or hidden names), separated by single `/`, no leading or trailing `/`.
    """
    if not isinstance(key, str) or not key:
        raise InvalidStorageKey(str(key), "empty")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidStorageKey(key[:64] + "...", f"longer than {MAX_KEY_LENGTH} characters")
    for segment in key.split("/"):
        if not _SEGMENT.fullmatch(segment):
            raise InvalidStorageKey(key, f"segment {segment!r} is not allowed")
    return key


def validate_prefix(prefix: str) -> str:
    """A listing prefix: empty (everything) or a safe key, optionally ending with `/`."""
    if prefix == "":
        return prefix
    validate_key(prefix.removesuffix("/"))
    return prefix


def organization_prefix(organization_id: uuid.UUID | str) -> str:
    return f"{ORGANIZATIONS_ROOT}/{_uuid(organization_id, 'organization_id')}/"


def upload_key(
    organization_id: uuid.UUID | str, file_id: uuid.UUID | str, uploaded_at: dt.date, extension: str
) -> str:
    return (
        f"{organization_prefix(organization_id)}uploads/{_year_month(uploaded_at)}/"
        f"{_uuid(file_id, 'file_id')}.{_extension(extension)}"
    )


def processed_prefix(organization_id: uuid.UUID | str, job_id: uuid.UUID | str) -> str:
    return f"{organization_prefix(organization_id)}processed/{_uuid(job_id, 'job_id')}/"


def processed_key(
    organization_id: uuid.UUID | str, job_id: uuid.UUID | str, name: str, extension: str
) -> str:
    """A job's output, e.g. `processed_key(org, job, "results", "parquet")`."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidStorageKey(str(name), "name must be 1-64 of a-z 0-9 _ - starting with a letter or digit")
    return f"{processed_prefix(organization_id, job_id)}{name}.{_extension(extension)}"


def normalized_file_key(
    organization_id: uuid.UUID | str, file_id: uuid.UUID | str, extension: str = "parquet", version: int = 1,
    writer: uuid.UUID | str | None = None,
) -> str:
    """Version 1 of a file's normalized form is `normalized.{ext}`, a later version N (a re-map)
    `normalized-vN.{ext}` beside it, or `normalized-vN-{writer}.{ext}` when the writer names itself
    (a re-map does: two writers of one version number never share an object, so the one the
    database refuses deletes only its own)."""
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InvalidStorageKey(str(version), "version must be an integer >= 1")
    name = "normalized" if version == 1 and writer is None else f"normalized-v{version}"
    if writer is not None:
        name += f"-{_uuid(writer, 'writer').replace('-', '')}"
    return (
        f"{organization_prefix(organization_id)}processed/{NORMALIZED_FILES_SEGMENT}/"
        f"{_uuid(file_id, 'file_id')}/{name}.{_extension(extension)}"
    )


def report_key(
    organization_id: uuid.UUID | str, report_id: uuid.UUID | str, generated_at: dt.date, extension: str
) -> str:
    return (
        f"{organization_prefix(organization_id)}reports/{_year_month(generated_at)}/"
        f"{_uuid(report_id, 'report_id')}.{_extension(extension)}"
    )


def export_key(organization_id: uuid.UUID | str, export_id: uuid.UUID | str, created_at: dt.date) -> str:
    """A data export's zip (issue 17 item 6): `organizations/{org}/exports/{YYYY}/{MM}/{id}.zip`."""
    return f"{organization_prefix(organization_id)}exports/{_year_month(created_at)}/{_uuid(export_id, 'export_id')}.zip"


def quarantine_key(
    organization_id: uuid.UUID | str, file_id: uuid.UUID | str, detected_at: dt.date, extension: str
) -> str:
    """Where an infected upload is kept for investigation: never under `organizations/`, so no
    listing, cleanup or download path of the organization's area can reach it."""
    return (
        f"{QUARANTINE_ROOT}/{_uuid(organization_id, 'organization_id')}/{_year_month(detected_at)}/"
        f"{_uuid(file_id, 'file_id')}.{_extension(extension)}"
    )


def is_quarantined(key: str) -> bool:
    return key.startswith(QUARANTINE_ROOT + "/")


def belongs_to_organization(key: str, organization_id: uuid.UUID | str) -> bool:
    """True when `key` is inside the organization's normal area (not quarantine, not another org)."""
    return validate_key(key).startswith(organization_prefix(organization_id))


def _uuid(value: uuid.UUID | str, field: str) -> str:
    if isinstance(value, uuid.UUID):
        return str(value)
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise InvalidStorageKey(str(value), f"{field} is not a UUID") from None


def _extension(extension: str) -> str:
    normalized = extension.lower().lstrip(".") if isinstance(extension, str) else ""
    if not _EXTENSION.fullmatch(normalized):
        raise InvalidStorageKey(str(extension), "extension must be 1-10 letters or digits")
    return normalized


def _year_month(moment: dt.date) -> str:
    if not isinstance(moment, dt.date):
        raise InvalidStorageKey(str(moment), "a date is required for the year/month folders")
    return f"{moment.year:04d}/{moment.month:02d}"
