"""Identity helpers for any feature's HTTP tests: sign up an organization, sign in, and get a
user of a given role with a working access token.

They talk HTTP only, so they work over the in-memory container
(`TestClient(create_app(bootstrap_in_memory()))`) and over a real one
(`TestClient(create_app(bootstrap(settings)))` with PostgreSQL and Redis). The authentication
rate limits (5/min per client IP and per account) would stop a test that signs in more than five
times a minute, so after each sign-in the helpers forget the test client's hits in the two auth
tiers (`relax_auth_limits`); tests of the limits themselves do not use the helpers.

    org_id, admin = onboard(client, org_code="acme")
    admin_token = login(client, admin.org_code, admin.email, admin.password)
    analyst_id, analyst_token = create_user_with_role(client, admin_token, "analyst")
    client.get("/api/reconciliations", headers=bearer(analyst_token))
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from reckai.application.ports.rate_limit import TIERS, auth_account_subject
from reckai.settings import DEV_AUDIT_HMAC_KEY, DEV_DATA_ENCRYPTION_KEY, DEV_JWT_SECRET

# For a process started by a test (`reckai worker` in embedded mode) that must share the keys of
# the test's own container (`Settings()`: the development values). Without them it would use the
# embedded instance's generated secrets (docs/identity.md, "Secrets of an embedded instance").
DEVELOPMENT_SECRETS_ENV = {"JWT_SECRET": DEV_JWT_SECRET, "AUDIT_HMAC_KEY": DEV_AUDIT_HMAC_KEY,
                           "DATA_ENCRYPTION_KEY": DEV_DATA_ENCRYPTION_KEY}

# Strong enough for the policy and zxcvbn (score >= 3), free of the helpers' names and e-mails.
DEFAULT_PASSWORD = "Quartz!Ledger-7291"
SECOND_PASSWORD = "Harbor#Tally-5830"


@dataclass(frozen=True)
class Credentials:
    org_code: str
    email: str
    password: str
    user_id: uuid.UUID


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _data(response: Any, status: int) -> Any:
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    return response.json()["data"]


def relax_auth_limits(client: Any, org_code: str | None = None, email: str | None = None) -> None:
    """Forget this test client's hits in the auth tiers (in-process apps only; a no-op otherwise)."""
    app = getattr(client, "app", None)
    state = getattr(app, "state", None)
    container = state.get("container") if state is not None else None
    if container is None:
        return
    limiter = container.rate_limiter
    for address in ("testclient", "unknown"):  # an in-process client has no IP address
        limiter.reset(TIERS["auth_ip"], address)
    if org_code and email:
        limiter.reset(TIERS["auth_account"], auth_account_subject(org_code, email))


def onboard(
    client: Any,
    org_code: str | None = None,
    *,
    name: str | None = None,
    admin_email: str | None = None,
    admin_name: str = "Ada Admin",
    password: str = DEFAULT_PASSWORD,
    subscription_tier: str = "standard",
    verify_email: bool = True,
    container: Any = None,
) -> tuple[uuid.UUID, Credentials]:
    """POST /api/organizations; returns the organization id and the first admin's credentials.

    A signed-up admin may not add users or start jobs until their address is verified
    (docs/identity.md, "E-mail verification"); tests of other features get a verified admin, marked
    so in the database of the in-process app's container (or `container`, for a client of a served
    app). The verification flow itself is tested with `verify_email=False`
    (tests/unit/test_email_verification.py)."""
    code = org_code or f"org-{uuid.uuid4().hex[:10]}"
    email = admin_email or f"admin.{uuid.uuid4().hex[:8]}@example.com"
    body = {"name": name or f"Org {code}", "code": code, "admin_email": email, "admin_name": admin_name,
            "admin_password": password, "subscription_tier": subscription_tier}
    relax_auth_limits(client)
    data = _data(client.post("/api/organizations", json=body), 201)
    relax_auth_limits(client)
    org_id, admin_id = uuid.UUID(data["organization_id"]), uuid.UUID(data["admin_user_id"])
    if verify_email:
        mark_email_verified(container or _container_of(client), org_id, admin_id)
    return org_id, Credentials(data["code"], email, password, admin_id)


def _container_of(client: Any) -> Any:
    app = getattr(client, "app", None)
    state = getattr(app, "state", None)
    container = state.get("container") if state is not None else None
    if container is None:
        raise AssertionError("onboard(): pass container= for a client of a served app, or verify_email=False")
    return container


def mark_email_verified(container: Any, organization_id: uuid.UUID, user_id: uuid.UUID) -> None:
    """What opening the verification link does to the user row, without the mail round trip."""
    with container.database.unit_of_work(organization_id) as uow:
        user = uow.users.get(user_id)
        assert user is not None
        user.is_email_verified = True
        uow.users.update(user)
        uow.commit()


def login_tokens(client: Any, org_code: str, email: str, password: str, headers: dict[str, str] | None = None) -> dict:
    """POST /api/auth/login; the `data` of the answer (status, tokens or mfa_token)."""
    response = client.post("/api/auth/login", json={"organization_code": org_code, "email": email,
                                                   "password": password}, headers=headers or {})
    relax_auth_limits(client, org_code, email)
    return _data(response, 200)  # type: ignore[no-any-return]


def login(client: Any, org_code: str, email: str, password: str) -> str:
    """An access token for an account without MFA and with a current password."""
    data = login_tokens(client, org_code, email, password)
    assert data["status"] == "authenticated", data
    return str(data["tokens"]["access_token"])


def create_user_with_role(
    client: Any,
    admin_token: str,
    role: str,
    *,
    email: str | None = None,
    name: str = "Sam Tester",
    password: str = SECOND_PASSWORD,
) -> tuple[uuid.UUID, str]:
    """Create a user of `role` in the admin's organization and sign them in: the admin sets a
    provisional password, the user signs in and changes it (as the policy requires).

    A role that may approve (supervisor, admin) needs another checker's approval over the API
    (segregation of duties), so those are added as an operator adds them (`reckai org add-user`,
    through the in-process app's container): independent of the admin, as a test's second checker
    should be."""
    email = email or f"{role}.{uuid.uuid4().hex[:8]}@example.com"
    me = _data(client.get("/api/auth/me", headers=bearer(admin_token)), 200)
    org_code = _org_code(client, admin_token, me)
    if role in ("supervisor", "admin"):
        from reckai.application.context import RequestInfo
        from reckai.application.identity.users import operator_add_user

        container = client.app.state["container"]
        user = operator_add_user(container.identity, organization_code=org_code, email=email, name=name, role=role,
                                 password=DEFAULT_PASSWORD, request=RequestInfo(user_agent="tests"))
        created = {"id": str(user.id)}
    else:
        created = _data(client.post("/api/users", json={"email": email, "name": name, "role": role,
                                                        "password": DEFAULT_PASSWORD}, headers=bearer(admin_token)),
                        201)
    first = login_tokens(client, org_code, email, DEFAULT_PASSWORD)
    assert first["status"] == "password_change_required", first
    changed = _data(client.post("/api/auth/password/change",
                                json={"current_password": DEFAULT_PASSWORD, "new_password": password},
                                headers=bearer(first["tokens"]["access_token"])), 200)
    return uuid.UUID(created["id"]), str(changed["access_token"])


def _org_code(client: Any, admin_token: str, me: dict) -> str:
    settings = client.get("/api/settings", headers=bearer(admin_token))
    assert settings.status_code == 200, settings.text
    return str(settings.json()["data"]["code"])
