"""Golden audit rows: the same HTTP requests must write the same audit rows.

A fixed scenario (sign-up; sign-ins failed, succeeded, with MFA; token refresh; users created,
invited, updated, deactivated, reactivated; password change, failed change, reset by e-mail;
settings changed directly and through `system_setting` approvals approved, declined, cancelled;
uploads, mappings, a download link, a file deletion; a matching rule through a
`rule_configuration` approval; a reconciliation job run to completion by the in-process worker,
renamed, its results read, a suggestion declined and one confirmed, then deleted; exceptions
started, assigned, commented on, resolved, one by one and in bulk; a permission refusal; a
session ended; logout) is driven with httpx against the in-memory app served by a real uvicorn
server on 127.0.0.1, so the client address the routes see is a real one (Litestar's in-process
TestClient reports "testclient", which some code paths record raw and others drop). Every audit
row written is read back (`AuditLog.read_chain`, ascending sequence; `list_records` is newest
first, at most 500 a page and blind to the system chain), normalised (see `normalise`) and
compared with tests/data/audit-golden/rows.json.

The file was generated from the code as it was before the use cases' audit events were
rebuilt (one caller type, one event builder, HTTP statuses moved to the HTTP layer): that change
must leave it byte-identical.

Regenerating: `REGENERATE_AUDIT_GOLDEN=1 .venv/bin/python -m pytest
tests/unit/test_audit_rows_unchanged.py` rewrites the golden file instead of comparing. Do it
only when a change of the audit rows is intended, and have the diff of rows.json reviewed with
that change: the file is the record of what the audit log says for these requests.

What is normalised, and why:

- ids, timestamps and chain bookkeeping (record id, chain key, sequence number, previous_hash,
  row hash, key id, created_at) are dropped: they differ per run or follow from the rest;
- every UUID anywhere (resource_id, user_id, organization_id, request_path, request_body,
  metadata, error_message) becomes "<uuid-N>", numbered by first appearance over the whole
  listing, so which row refers to which entity is still checked;
- values that are random or time-dependent per run are replaced by placeholders: a token's jti
  (32 hex digits, numbered like the UUIDs), timestamps with a time of day ("<datetime>", e.g. an
  exception's due_at moved by a severity change), measured durations (`_VOLATILE_KEYS`), and any
  JWT ("<jwt>"; none reaches the rows today: the redaction removes tokens and secrets first), and
  a personal value sealed under its subject's key ("<sealed personal value>"; random ciphertext,
  docs/privacy.md, "Erasure");
- the periodic jobs (sweeps, SLA escalation, session clean-up) are not part of the scenario:
  the worker runner starts without its scheduler, so they never run during it (they are
  time-driven, not caused by a request, and would land at arbitrary places in the chains);
- background work (file normalisation, the reconciliation job and what it enqueues) is awaited
  until the job outbox is idle before the next request, so its rows always land at the same
  place in the organization's chain.

- access events (`access.*`, issue 17 item 3) are written in batches by a background thread, so
  where they land in the chain depends on timing: they are listed after the other rows, sorted by
  their content (without `accessed_at` and the request id).

Order: the organization's chain first, then the system chain (the failed sign-in for an unknown
organization), each in sequence order, never reordered inside a chain. How rows of the two chains
interleave in time is not recorded (it is not a property of the rows), so concatenating chain by
chain is what keeps the listing independent of timing.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import os
import re
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Self

import httpx
import pyotp
import uvicorn

from reckai.adapters.memory.scanner import InMemoryScanner
from reckai.application.context import RequestInfo
from reckai.application.identity.users import operator_add_user
from reckai.application.ports.jobs import OutboxStatus
from reckai.application.ports.rate_limit import TIERS, auth_account_subject
from reckai.bootstrap import Container, bootstrap_in_memory
from reckai.domain.audit.events import SYSTEM_CHAIN_KEY, AuditRecord
from reckai.entrypoints.http.app import create_app
from tests.support import reconciliation_jobs as rj

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "audit-golden" / "rows.json"
REGENERATE = os.environ.get("REGENERATE_AUDIT_GOLDEN") == "1"
USER_AGENT = "reckai-audit-golden/1.0"
LOOPBACK = "127.0.0.1"

ORG_CODE = "golden-bank"
ADMIN_EMAIL = "ada.admin@golden.test"
PASSWORD = "Quartz!Ledger-7291"
SECOND_PASSWORD = "Harbor#Tally-5830"
THIRD_PASSWORD = "Meadow$Ledger-4417"
RULE = {"rule_type": "exact", "priority": 10, "date_tolerance_days": 2,
        "field_mappings": [{"left": "reference", "right": "reference"}],
        "conditions": {"right": [{"field": "status", "op": "eq", "value": "success"}],
                       "date_direction": "left_on_or_after_right", "auto_match_threshold": 1.0},
        "applies_to": {"left": "bank", "right": "switch"}}
SMALL_CSV = b"trans_date,value_date,reference,narration,amount,currency,balance\n" \
            b"2025-12-01,2025-12-01,111122223333,POS PURCHASE RRN:111122223333,-100.00,NGN,900.00\n"


# --- the server -----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


class Served:
    """The in-memory container behind a real uvicorn server, its worker running in process."""

    def __init__(self) -> None:
        self.container: Container = bootstrap_in_memory(scanner=InMemoryScanner())
        # No scheduler: the periodic jobs are time-driven, not part of the scenario (module doc).
        self.container.worker_runner.schedule = []
        self.port = _free_port()
        config = uvicorn.Config(create_app(self.container), host=LOOPBACK, port=self.port,
                                log_config=None, lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="audit-golden-uvicorn", daemon=True)

    def __enter__(self) -> Self:
        self.container.worker_runner.start()
        self.thread.start()
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"http://{LOOPBACK}:{self.port}/health", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not answer within 20 s"
            time.sleep(0.05)

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(15)
        self.container.worker_runner.stop()
        self.container.close()

    def mail_token(self, to: str, path: str, timeout: float = 20) -> str:
        """The token of the newest mail to `to` linking to `path` (sent by a job or after the answer)."""
        deadline = time.monotonic() + timeout
        while True:
            self.wait_idle()
            for mail in reversed(self.container.mailer.sent):  # type: ignore[attr-defined]
                found = re.search(re.escape(path) + r"[?]token=([A-Za-z0-9_\-.%]+)", mail.text_body)
                if mail.to == to and found:
                    self.container.mailer.sent.clear()  # type: ignore[attr-defined]
                    return found.group(1)
            assert time.monotonic() < deadline, f"no mail to {to} links to {path}"
            time.sleep(0.05)

    def wait_idle(self, timeout: float = 120) -> None:
        """Until every outbox message is done or failed (the background work has audited)."""
        runner, outbox = self.container.worker_runner, self.container.job_outbox
        deadline = time.monotonic() + timeout
        while True:
            runner.wake_relay()
            if all(r.status in (OutboxStatus.DONE, OutboxStatus.FAILED) for r in outbox.records()):  # type: ignore[attr-defined]
                return
            assert time.monotonic() < deadline, [(r.actor_name, r.status) for r in outbox.records()]  # type: ignore[attr-defined]
            time.sleep(0.05)


class Client:
    def __init__(self, served: Served) -> None:
        self.served = served
        self.http = httpx.Client(base_url=f"http://{LOOPBACK}:{served.port}", timeout=60,
                                 headers={"User-Agent": USER_AGENT})

    def call(self, method: str, path: str, token: str | None, status: int, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = self.http.request(method, path, headers=headers, **kwargs)
        assert response.status_code == status, f"{method} {path}: {response.status_code}: {response.text}"
        self.relax()
        return response.json().get("data") if response.content else None

    def relax(self, org_code: str | None = None, email: str | None = None) -> None:
        """Forget the auth tiers' hits (5/min per IP and per account would stop the scenario)."""
        limiter = self.served.container.rate_limiter
        limiter.reset(TIERS["auth_ip"], LOOPBACK)
        if org_code and email:
            limiter.reset(TIERS["auth_account"], auth_account_subject(org_code, email))

    def login(self, email: str, password: str, status: int = 200, org_code: str = ORG_CODE) -> Any:
        data = self.call("POST", "/api/auth/login", None, status,
                         json={"organization_code": org_code, "email": email, "password": password})
        self.relax(org_code, email)
        return data

    def token(self, email: str, password: str) -> str:
        data = self.login(email, password)
        assert data["status"] == "authenticated", data
        return str(data["tokens"]["access_token"])

    def new_user(self, admin: str, email: str, name: str, role: str, password: str) -> tuple[str, str]:
        """Created with a provisional password, signed in, password changed: (id, access token).
        A checker (supervisor, admin) is added as an operator adds one (`reckai org add-user`):
        over the API a checker's account needs another checker's approval (segregation of duties)."""
        if role in ("supervisor", "admin"):
            user = operator_add_user(self.served.container.identity, organization_code=ORG_CODE, email=email,
                                     name=name, role=role, password=PASSWORD,
                                     request=RequestInfo(user_agent="reckai-cli", method="CLI",
                                                         path="reckai org add-user"))
            created = {"id": str(user.id)}
        else:
            created = self.call("POST", "/api/users", admin, 201,
                                json={"email": email, "name": name, "role": role, "password": PASSWORD})
        first = self.login(email, PASSWORD)
        assert first["status"] == "password_change_required", first
        changed = self.call("POST", "/api/auth/password/change", first["tokens"]["access_token"], 200,
                            json={"current_password": PASSWORD, "new_password": password})
        return str(created["id"]), str(changed["access_token"])

    def upload(self, token: str, name: str, data: bytes, file_type: str) -> str:
        uploaded = self.call("POST", "/api/files/upload", token, 201, data={"file_type": file_type},
                             files={"file": (name, data, "text/csv")})
        return str(uploaded["id"])


# --- the scenario ---------------------------------------------------------------------------------


def run_scenario() -> list[dict[str, Any]]:
    with Served() as served:
        api = Client(served)
        try:
            org = _scenario(api, served)
        finally:
            api.http.close()
        return _read_rows(served.container, org)


def _scenario(api: Client, served: Served) -> uuid.UUID:
    # Sign-up, sign-in (wrong password, unknown organization, right password), refresh.
    signed_up = api.call("POST", "/api/organizations", None, 201, json={
        "name": "Golden Bank", "code": ORG_CODE, "admin_email": ADMIN_EMAIL, "admin_name": "Ada Admin",
        "admin_password": PASSWORD, "subscription_tier": "standard"})
    org_id = uuid.UUID(signed_up["organization_id"])
    api.call("POST", "/api/auth/login", None, 401,
             json={"organization_code": ORG_CODE, "email": ADMIN_EMAIL, "password": "Wrong!Password-0000"})
    api.relax(ORG_CODE, ADMIN_EMAIL)
    api.call("POST", "/api/auth/login", None, 401,
             json={"organization_code": "no-such-bank", "email": ADMIN_EMAIL, "password": PASSWORD})
    api.relax()
    tokens = api.login(ADMIN_EMAIL, PASSWORD)["tokens"]
    refreshed = api.call("POST", "/api/auth/refresh", None, 200, json={"refresh_token": tokens["refresh_token"]})
    admin = str(refreshed["access_token"])
    # The signed-up admin verifies the address with the mailed link (issue 17 item 8): refused
    # before, allowed after.
    api.call("POST", "/api/users", admin, 403,
             json={"email": "too.early@golden.test", "name": "Too Early", "role": "analyst"})
    verification = served.mail_token(ADMIN_EMAIL, "/verify-email")
    api.call("POST", "/api/auth/email-verification/confirm", None, 200, json={"token": verification})

    # Users: a supervisor and an analyst (provisional passwords, changed at first sign-in); an
    # auditor invited by e-mail who accepts, resets her password, is renamed, changes role, is
    # deactivated and reactivated.
    supervisor_id, supervisor = api.new_user(admin, "sue.supervisor@golden.test", "Sue Supervisor", "supervisor",
                                 SECOND_PASSWORD)
    analyst_id, analyst = api.new_user(admin, "alan.analyst@golden.test", "Alan Analyst", "analyst",
                                       SECOND_PASSWORD)
    invited = api.call("POST", "/api/users", admin, 201,
                       json={"email": "ida.auditor@golden.test", "name": "Ida Auditor", "role": "auditor"})
    api.call("POST", f"/api/users/{invited['id']}/invite", admin, 200)
    invitation = served.mail_token("ida.auditor@golden.test", "/accept-invitation")
    api.call("POST", "/api/auth/invitations/accept", None, 200,
             json={"token": invitation, "password": THIRD_PASSWORD})
    # She forgets it: a reset link by e-mail, a new password, a sign-in with it.
    api.call("POST", "/api/auth/password/reset", None, 202,
             json={"organization_code": ORG_CODE, "email": "ida.auditor@golden.test"})
    api.relax(ORG_CODE, "ida.auditor@golden.test")
    reset = served.mail_token("ida.auditor@golden.test", "/reset-password")
    api.call("POST", "/api/auth/password/reset/confirm", None, 200,
             json={"token": reset, "new_password": SECOND_PASSWORD})
    api.relax()
    api.token("ida.auditor@golden.test", SECOND_PASSWORD)
    api.call("PUT", f"/api/users/{invited['id']}", admin, 200, json={"name": "Ida Auditor-Smith"})
    api.call("PUT", f"/api/users/{invited['id']}", admin, 200, json={"role": "analyst"})
    api.call("DELETE", f"/api/users/{invited['id']}", admin, 200)
    api.call("PUT", f"/api/users/{invited['id']}", admin, 200, json={"is_active": True})
    # The admin changes their own password (a wrong current password first).
    api.call("POST", "/api/auth/password/change", admin, 401,
             json={"current_password": "Not!The-Password-1", "new_password": THIRD_PASSWORD})
    admin_tokens = api.call("POST", "/api/auth/password/change", admin, 200,
                            json={"current_password": PASSWORD, "new_password": THIRD_PASSWORD})
    admin = str(admin_tokens["access_token"])

    # Permission refused: an analyst calling an admin route.
    api.call("GET", "/api/users", analyst, 403)

    # Settings: a direct change; then system_setting changes go through a checker (one approved,
    # one declined, one cancelled by its maker).
    api.call("PUT", "/api/settings", admin, 200, json={"name": "Golden Bank plc"})
    controls = api.call("POST", "/api/approvals", admin, 201, json={
        "type": "system_setting", "title": "Controls", "description": "maker-checker for settings",
        "metadata": {"key": "workflow", "value": {"approval_required_for": ["system_setting"]}}})
    api.call("POST", f"/api/approvals/{controls['id']}/approve", supervisor, 200, json={})
    pending = api.call("PUT", "/api/settings", admin, 202, json={"password_policy": {"min_length": 14}})
    api.call("POST", f"/api/approvals/{pending['pending_approval']['id']}/approve", supervisor, 200,
             json={"comment": "agreed"})
    declined = api.call("PUT", "/api/settings", admin, 202, json={"name": "Never Bank"})
    api.call("POST", f"/api/approvals/{declined['pending_approval']['id']}/decline", supervisor, 200,
             json={"comment": "no"})
    cancelled = api.call("PUT", "/api/settings", admin, 202, json={"domain": "golden.test"})
    api.call("POST", f"/api/approvals/{cancelled['pending_approval']['id']}/cancel", admin, 200, json={})

    # Files: the two statements uploaded and mapped (normalised in the background), a download
    # link, and a stray file uploaded then deleted.
    profile = rj.profile()
    bank = api.upload(analyst, "bank.csv", rj.bank_bytes(), "bank")
    api.call("POST", f"/api/files/{bank}/map", analyst, 200,
             json={"transformation_rules": profile["left"]["mapping"]})
    served.wait_idle()
    switch = api.upload(analyst, "switch.csv", rj.switch_bytes(), "switch")
    api.call("POST", f"/api/files/{switch}/map", analyst, 200,
             json={"transformation_rules": profile["right"]["mapping"]})
    served.wait_idle()
    api.call("GET", f"/api/files/{bank}/download", analyst, 200)
    stray = api.upload(analyst, "stray.csv", SMALL_CSV, "bank")
    api.call("DELETE", f"/api/files/{stray}", admin, 200)
    served.wait_idle()

    # A matching rule: proposed by the admin (rule_configuration approval), approved by the supervisor.
    proposal = api.call("POST", "/api/rules", admin, 202, json={"name": "rrn-exact", "definition": RULE})
    api.call("POST", f"/api/approvals/{proposal['approval']['id']}/approve", supervisor, 200, json={})
    rule_id = proposal["rule"]["id"]

    # A reconciliation job, run by the in-process worker to completion, renamed, its results read.
    body = {**rj.start_body(uuid.UUID(bank), uuid.UUID(switch)), "rule_ids": [rule_id]}
    job = api.call("POST", "/api/reconciliations", analyst, 201, json=body)
    served.wait_idle()
    finished = api.call("GET", f"/api/reconciliations/{job['id']}", analyst, 200)
    assert finished["status"] == "completed", finished
    api.call("PUT", f"/api/reconciliations/{job['id']}", analyst, 200, json={"name": "December, checked"})
    api.call("GET", f"/api/reconciliations/{job['id']}/results?per_page=10", analyst, 200)
    suggestions = api.call("GET", f"/api/reconciliations/{job['id']}/results?kind=suggestions&per_page=100",
                           analyst, 200)["items"]
    pairs = sorted((s["left_row"], s["right_row"]) for s in suggestions)
    api.call("POST", "/api/exceptions/matching/decline", analyst, 201,
             json={"job_id": job["id"], "left_row": pairs[0][0], "right_row": pairs[0][1],
                   "reason": "different cards"})
    confirmed = next(p for p in pairs[1:] if p[0] != pairs[0][0] and p[1] != pairs[0][1])
    api.call("POST", "/api/exceptions/matching/confirm", analyst, 201,
             json={"job_id": job["id"], "left_row": confirmed[0], "right_row": confirmed[1]})

    # Exceptions: the list; one started, assigned, commented on and resolved; another started with
    # a severity override, assigned and resolved in bulk. Which ones: the lowest rows of their
    # type, so the choice never depends on ids or on the list's order among equal keys.
    missing = _exceptions(api, analyst, job["id"], "missing_entry")
    mismatch = _exceptions(api, analyst, job["id"], "amount_mismatch")
    first, second = missing[0]["id"], mismatch[0]["id"]
    api.call("PATCH", f"/api/exceptions/{first}", analyst, 200, json={"status": "in_progress"})
    api.call("POST", f"/api/exceptions/{first}/assign", admin, 200, json={"assignee_id": analyst_id})
    api.call("POST", f"/api/exceptions/{first}/comments", analyst, 201,
             json={"content": "Chasing the bank for the statement line."})
    api.call("POST", f"/api/exceptions/{first}/resolve", analyst, 200,
             json={"resolution_code": "corrected_at_source", "resolution_note": "bank reposted it"})
    api.call("PATCH", f"/api/exceptions/{second}", analyst, 200,
             json={"status": "in_progress", "severity": "high", "reason": "large amount"})
    api.call("POST", "/api/exceptions/bulk/assign", admin, 200,
             json={"exception_ids": [second], "assignee_id": analyst_id})
    api.call("POST", "/api/exceptions/bulk/resolve", analyst, 200,
             json={"exception_ids": [second], "resolution_code": "written_off",
                   "resolution_note": "below the write-off limit"})
    served.wait_idle()

    # MFA: the supervisor enrols, signs in with a recovery code; the admin resets it.
    enrolment = api.call("POST", "/api/auth/mfa/enable", supervisor, 200, json={"password": SECOND_PASSWORD})
    codes = api.call("POST", "/api/auth/mfa/verify", supervisor, 200,
                     json={"code": pyotp.TOTP(enrolment["secret"]).now()})["recovery_codes"]
    step = api.login("sue.supervisor@golden.test", SECOND_PASSWORD)
    assert step["status"] == "mfa_required", step
    api.call("POST", "/api/auth/mfa/login", None, 200, json={"mfa_token": step["mfa_token"], "code": codes[0]})
    api.call("POST", f"/api/users/{supervisor_id}/mfa/reset", admin, 200, json={"password": THIRD_PASSWORD})

    # Sessions: the analyst signs in elsewhere and ends that session from the first one.
    elsewhere = api.login("alan.analyst@golden.test", SECOND_PASSWORD)["tokens"]
    api.call("DELETE", f"/api/sessions/{elsewhere['session_id']}", analyst, 200)

    # The job is deleted; sign-out: the analyst's access token, the admin's session too.
    api.call("DELETE", f"/api/reconciliations/{job['id']}", admin, 200)
    served.wait_idle()
    api.call("POST", "/api/auth/logout", analyst, 200, json={})
    api.call("POST", "/api/auth/logout", admin, 200, json={"refresh_token": admin_tokens["refresh_token"]})
    served.wait_idle()
    return org_id


def _exceptions(api: Client, token: str, job_id: str, kind: str) -> list[dict[str, Any]]:
    """Every exception of `kind` in the job, by (left_row, right_row): an order ids cannot change."""
    found: list[dict[str, Any]] = []
    page = 1
    while True:
        items = api.call("GET", f"/api/exceptions?job_id={job_id}&type={kind}&per_page=100&page={page}",
                         token, 200)
        found += items
        if len(items) < 100:
            break
        page += 1
    def rows(item: dict[str, Any]) -> tuple[int, int]:
        return item["left_row"] or 0, item["right_row"] or 0

    found.sort(key=rows)
    assert len(found) > 1 and rows(found[0]) != rows(found[1]), kind
    return found


# --- reading and normalising ------------------------------------------------------------------------


def _read_rows(container: Container, org_id: uuid.UUID) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    container.access_recorder.flush()
    access: list[dict[str, Any]] = []
    for chain, label in ((org_id, "organization"), (SYSTEM_CHAIN_KEY, "system")):
        records = _chain(container, chain)
        assert [r.sequence_number for r in records] == list(range(1, len(records) + 1))
        rows += [{"chain": label, **_fields(r)} for r in records if not r.event.action.startswith("access.")]
        access += [{"chain": f"{label} (access event)", **_fields(r)} for r in records
                   if r.event.action.startswith("access.")]
    # Access events are written in batches by a background thread (module doc): where they land in
    # the chain depends on timing, so they are listed after the rest, in an order of their own.
    rows += sorted(access, key=lambda row: json.dumps(
        {k: v for k, v in row.items() if k != "metadata"} | {"metadata": {
            k: v for k, v in (row["metadata"] or {}).items() if k not in ("accessed_at", "request_id")}},
        sort_keys=True, default=str))
    unexpected = set(container.audit_log.chain_keys()) - {org_id, SYSTEM_CHAIN_KEY}
    assert not unexpected, unexpected
    return rows


def _chain(container: Container, chain_key: uuid.UUID) -> list[AuditRecord]:
    records: list[AuditRecord] = []
    while True:
        page = container.audit_log.read_chain(chain_key, records[-1].sequence_number if records else 0, 1000)
        if not page:
            return records
        records += page


def _fields(record: AuditRecord) -> dict[str, Any]:
    event = record.event
    return {name: getattr(event, name) for name in (
        "action", "organization_id", "user_id", "resource_type", "resource_id", "ip_address", "user_agent",
        "request_method", "request_path", "request_body", "response_status", "error_message", "metadata")}


def normalise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """UUIDs numbered by first appearance, volatile values replaced; nothing else changes."""
    ids: dict[str, str] = {}
    return [_normalise_value(row, ids, None) for row in rows]


def main_rows() -> str:
    return json.dumps(normalise(run_scenario()), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


# A UUID, dashed or as 32 hex digits on its own (a token's jti is uuid4().hex); not part of a
# longer hex string (a sha256 stays: it depends on the file only).
_UUID = re.compile(r"(?<![0-9a-fA-F])(?:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
                   r"|[0-9a-fA-F]{32})(?![0-9a-fA-F])")
_JWT = re.compile(r"eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+")
# A timestamp with a time of day (due dates, expiries: they follow the clock); plain dates stay.
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?")
# A personal value sealed under its subject's key (issue 17 item 5): random ciphertext per run.
_SEALED = re.compile(r"erasable:v1:[0-9a-f-]{36}:[0-9a-f-]{36}:[A-Za-z0-9_-]+")
SEALED = "<sealed personal value>"
# Metadata keys whose values are measured, not decided: replaced whatever they hold.
_VOLATILE_KEYS: dict[str, str] = {"processing_time_seconds": "<seconds>"}


def _normalise_value(value: Any, ids: dict[str, str], key: str | None) -> Any:
    if key is not None and key in _VOLATILE_KEYS and value is not None:
        return _VOLATILE_KEYS[key]
    if isinstance(value, dict):
        return {_scrub_text(str(k), ids): _normalise_value(v, ids, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_normalise_value(v, ids, None) for v in value]
    if isinstance(value, uuid.UUID):
        value = str(value)
    if isinstance(value, dt.datetime):
        return "<datetime>"
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        return _scrub_text(value, ids)
    if value is None or isinstance(value, bool | int | float):
        return value
    return f"<{type(value).__name__}:{value}>"


def _scrub_text(text: str, ids: dict[str, str]) -> str:
    def number(match: re.Match[str]) -> str:
        found = str(uuid.UUID(match.group(0)))
        if found not in ids:
            ids[found] = f"<uuid-{len(ids) + 1}>"
        return ids[found]

    if _SEALED.fullmatch(text):
        return SEALED
    text = _JWT.sub("<jwt>", text)
    text = _DATETIME.sub("<datetime>", text)
    return _UUID.sub(number, text)


# --- the test -------------------------------------------------------------------------------------


def _summary(expected: str, produced: str, limit: int = 20) -> list[str]:
    """One line per differing row (index, action, fields), before the full diff."""
    old, new = json.loads(expected), json.loads(produced)
    lines = [f"{len(old)} rows expected, {len(new)} written"] if len(old) != len(new) else []
    for index, (was, now) in enumerate(zip(old, new, strict=False)):
        if was != now:
            fields = sorted(k for k in was.keys() | now.keys() if was.get(k) != now.get(k))
            action = was.get("action") if was.get("action") == now.get("action") else \
                f"{was.get('action')} -> {now.get('action')}"
            lines.append(f"row {index} ({action}): {', '.join(fields)}")
    return lines[:limit] + (["..."] if len(lines) > limit else [])


def test_audit_rows_match_the_golden_file() -> None:
    produced = main_rows()
    if REGENERATE:
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(produced, encoding="utf-8")
        return
    expected = GOLDEN.read_text(encoding="utf-8")
    if produced != expected:
        diff = "".join(difflib.unified_diff(expected.splitlines(keepends=True), produced.splitlines(keepends=True),
                                            "tests/data/audit-golden/rows.json", "audit rows written now", n=6))
        raise AssertionError(
            "the audit rows differ from the golden file (REGENERATE_AUDIT_GOLDEN=1 rewrites it when the change "
            "is intended and reviewed; see the module docstring)\n" + "\n".join(_summary(expected, produced))
            + "\n" + diff)
