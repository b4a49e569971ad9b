"""The search parameters (issue 16 item 3) shared by `GET /api/exceptions` (and its export) and
`GET /api/reconciliations/{id}/results`: each made into the key the stored values are compared
with (domain/exceptions/search.py). A parameter given empty is refused, never read as "no filter";
an account is masked before use, so a pasted full PAN is never compared, stored or audited whole."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from litestar.params import FromQuery, QueryParameter

from reckai.application.errors import FieldError, ValidationFailed
from reckai.application.ports.reconciliations import RowSearch
from reckai.domain.exceptions.search import MAX_SEARCH_KEY, masked_account, search_key
from reckai.entrypoints.http.request import decimal_query

REFERENCE = Annotated[str | None, QueryParameter(
    description="the reference (RRN), exactly (case ignored)", max_length=MAX_SEARCH_KEY)]
REFERENCE_PREFIX = Annotated[str | None, QueryParameter(
    description="the reference starts with this (case ignored)", max_length=MAX_SEARCH_KEY)]
SECONDARY_REFERENCE = Annotated[str | None, QueryParameter(
    description="the secondary reference (STAN), exactly (case ignored)", max_length=MAX_SEARCH_KEY)]
SECONDARY_REFERENCE_PREFIX = Annotated[str | None, QueryParameter(
    description="the secondary reference starts with this (case ignored)", max_length=MAX_SEARCH_KEY)]
ACCOUNT = Annotated[str | None, QueryParameter(
    description="the masked account or PAN (539983******1234); a full PAN is masked before use",
    max_length=MAX_SEARCH_KEY)]
CHANNEL = Annotated[str | None, QueryParameter(description="comma-separated channels (case ignored)")]


@dataclass(frozen=True)
class SearchKeys:
    reference: str | None
    reference_prefix: str | None
    secondary_reference: str | None
    secondary_reference_prefix: str | None
    masked_account: str | None
    channels: tuple[str, ...]

    def given(self) -> dict[str, str]:
        """What was searched, as the audit row keeps it (the account masked)."""
        values = {"reference": self.reference, "reference_prefix": self.reference_prefix,
                  "secondary_reference": self.secondary_reference,
                  "secondary_reference_prefix": self.secondary_reference_prefix, "account": self.masked_account,
                  "channel": ",".join(self.channels) or None}
        return {name: value for name, value in values.items() if value is not None}


def _key(name: str, value: str | None, make_key: Callable[[str | None], str | None]) -> str | None:
    if value is None:
        return None
    key = make_key(value)
    if key is None:
        raise ValidationFailed([FieldError(name, "must not be empty")])
    return key


def search_keys(reference: str | None, reference_prefix: str | None, secondary_reference: str | None,
                secondary_reference_prefix: str | None, account: str | None, channel: str | None) -> SearchKeys:
    channels = tuple(key for part in (channel or "").split(",") if (key := search_key(part)))
    if channel is not None and not channels:
        raise ValidationFailed([FieldError("channel", "must name at least one channel")])
    return SearchKeys(_key("reference", reference, search_key), _key("reference_prefix", reference_prefix, search_key),
                      _key("secondary_reference", secondary_reference, search_key),
                      _key("secondary_reference_prefix", secondary_reference_prefix, search_key),
                      _key("account", account, masked_account), channels)


def provide_row_search(
    reference: REFERENCE = None, reference_prefix: REFERENCE_PREFIX = None,
    secondary_reference: SECONDARY_REFERENCE = None, secondary_reference_prefix: SECONDARY_REFERENCE_PREFIX = None,
    account: ACCOUNT = None, channel: CHANNEL = None,
    amount_min: Annotated[str | None, QueryParameter(description="on the row's amount (major units)")] = None,
    amount_max: FromQuery[str | None] = None,
    date_from: Annotated[dt.date | None, QueryParameter(description="the row's transaction date from (inclusive)")]
    = None,
    date_to: FromQuery[dt.date | None] = None,
) -> RowSearch | None:
    """The results page's `search` dependency: None when no search parameter is given."""
    keys = search_keys(reference, reference_prefix, secondary_reference, secondary_reference_prefix, account, channel)
    search = RowSearch(reference=keys.reference, reference_prefix=keys.reference_prefix,
                       secondary_reference=keys.secondary_reference,
                       secondary_reference_prefix=keys.secondary_reference_prefix,
                       masked_account=keys.masked_account, channels=keys.channels,
                       amount_min=decimal_query(amount_min, "amount_min"),
                       amount_max=decimal_query(amount_max, "amount_max"), date_from=date_from, date_to=date_to)
    return None if search == RowSearch() else search
