"""`POST /api/organizations`: public sign-up of an organization with its first admin (spec §3.2).
Off by default in production (ALLOW_PUBLIC_SIGNUP); operators then use `reckai org create`. A
sign-up is always on the standard tier: only an operator changes a tier (`reckai org tier`)."""

from __future__ import annotations

import uuid

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
    name: str
    code: str
    admin_email: str
    admin_name: str
    admin_password: str
    domain: str | None = None
    # Accepted for compatibility and ignored: a sign-up always lands on the standard tier; an
    # operator changes it (`reckai org tier`).
    subscription_tier: str = "standard"


class OrganizationCreated(msgspec.Struct):
    organization_id: uuid.UUID
    code: str
    admin_user_id: uuid.UUID


@post("/api/organizations", opt={"public": True}, status_code=201, sync_to_thread=True)
def create_organization(data: JSONBody[OrganizationCreate], identity: NamedDependency[IdentityServices],
                        request_info: NamedDependency[RequestInfo]) -> Success[OrganizationCreated]:
    created = onboard_organization(
        identity, name=data.name, code=data.code, domain=data.domain, subscription_tier=data.subscription_tier,
        admin_email=data.admin_email, admin_name=data.admin_name, admin_password=data.admin_password,
        request=request_info, public=True)
    return ok(OrganizationCreated(created.organization_id, created.code, created.admin_user_id))


ROUTE_HANDLERS = [create_organization]
# An identity entity refusing a value (an empty admin name reached it: found by the API fuzzer) is
# bad input on any route, never a 500.
ERROR_STATUSES = {InvalidEntity: 400}
