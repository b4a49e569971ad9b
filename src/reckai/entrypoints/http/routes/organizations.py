"""`POST /api/organizations`: public sign-up of an organization with its first admin (spec §3.2).
Off by default in production (ALLOW_PUBLIC_SIGNUP); operators then use `reckai org create`. A
sign-up is always on the standard tier: only an operator changes a tier (`reckai org tier`)."""

from __future__ import annotations

import uuid
from typing import Annotated

import msgspec
from litestar import post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from reckai.application.context import RequestInfo
from reckai.application.identity.common import IdentityServices
from reckai.application.identity.organizations import onboard_organization
from reckai.domain.identity.entities import InvalidEntity
from reckai.entrypoints.http.envelope import Success, ok


class OrganizationCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(description="The organization's display name.", examples=["First Bank Plc"])]
    code: Annotated[str, msgspec.Meta(description="The sign-in code users type at login: unique, lower-case "
                                                  "letters, digits and hyphens.", examples=["first-bank"])]
    admin_email: Annotated[str, msgspec.Meta(description="The first administrator's e-mail address.",
                                             examples=["ops.admin@firstbank.example"])]
    admin_name: Annotated[str, msgspec.Meta(description="The first administrator's full name.",
                                            examples=["Ada Okafor"])]
    admin_password: Annotated[str, msgspec.Meta(description="The first administrator's password; it must meet the "
                                                            "default password policy.",
                                                examples=["Quartz!Ledger-7291"])]
    domain: Annotated[str | None, msgspec.Meta(description="The organization's e-mail domain, if any.",
                                               examples=["firstbank.example"])] = None
    # Accepted for compatibility and ignored: a sign-up always lands on the standard tier; an
    # operator changes it (`reckai org tier`).
    subscription_tier: Annotated[str, msgspec.Meta(description="Ignored: a sign-up always starts on the standard "
                                                               "tier; an operator changes it.",
                                                   examples=["standard"])] = "standard"


class OrganizationCreated(msgspec.Struct):
    organization_id: uuid.UUID
    code: str
    admin_user_id: uuid.UUID


@post("/api/organizations", opt={"public": True, "errors": {
    403: "SIGNUP_DISABLED: this instance does not take public sign-ups (an operator creates organizations).",
    409: "ORGANIZATION_CODE_TAKEN: the code is in use; EMAIL_TAKEN.",
    429: "RATE_LIMITED: too many sign-ups from this address; retry after `Retry-After`."}},
      status_code=201, sync_to_thread=True, summary="Sign up an organization")
def create_organization(data: JSONBody[OrganizationCreate], identity: NamedDependency[IdentityServices],
                        request_info: NamedDependency[RequestInfo]) -> Success[OrganizationCreated]:
    """Creates an organization on the standard tier with its first administrator, who signs in with the
    code, e-mail and password given. 400 PASSWORD_POLICY_VIOLATION lists every broken rule."""
    created = onboard_organization(
        identity, name=data.name, code=data.code, domain=data.domain, subscription_tier=data.subscription_tier,
        admin_email=data.admin_email, admin_name=data.admin_name, admin_password=data.admin_password,
        request=request_info, public=True)
    return ok(OrganizationCreated(created.organization_id, created.code, created.admin_user_id))


ROUTE_HANDLERS = [create_organization]
# An identity entity refusing a value (an empty admin name reached it: found by the API fuzzer) is
# bad input on any route, never a 500.
ERROR_STATUSES = {InvalidEntity: 400}
