"""Data exports (issue 17 item 6) over HTTP, one scenario for the in-memory container
(tests/unit/test_privacy_exports.py) and PostgreSQL with the filesystem storage
(tests/integration/test_privacy_exports_postgres.py): a person's export by themself and by an
admin, refused to another analyst; the organization's only through an approved `data_export`
approval (self-approval refused); the zip read back, every stored row and object in it, and
`reckai privacy verify-export` passing; a tampered zip failing, naming the file; the download
link working and audited."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
import json
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from reckai.application.ports.audit import AuditQuery
from reckai.application.privacy.archive import verify_archive
from reckai.application.privacy.expiry import expire_data_exports
from reckai.bootstrap import Container
from reckai.entrypoints.cli.main import main as cli_main
from tests.support import reconciliation_jobs as rj
from tests.support.identity import bearer, create_user_with_role, login, onboard


class ExportWorld:
    def __init__(self, client: TestClient, container: Container) -> None:
        self.client, self.container = client, container
        org, admin = onboard(client)
        self.org = uuid.UUID(str(org))
        self.tokens = {"admin": login(client, admin.org_code, admin.email, admin.password)}
        self.ids = {"admin": uuid.UUID(str(admin.user_id))}
        for name, role in (("analyst", "analyst"), ("analyst2", "analyst"), ("supervisor", "supervisor"),
                           ("admin2", "admin")):
            user_id, token = create_user_with_role(self.client, self.tokens["admin"], role,
                                                   email=f"{name}.{uuid.uuid4().hex[:6]}@exports.test")
            self.tokens[name], self.ids[name] = token, user_id
        self.uploads: dict[str, bytes] = {}
        self.job_id = ""
        self.comment_id = ""

    def get(self, path: str, who: str = "admin") -> Any:
        return self.client.get(path, headers=bearer(self.tokens[who]))

    def post(self, path: str, body: Any, who: str = "admin") -> Any:
        return self.client.post(path, json=body, headers=bearer(self.tokens[who]))

    def fetch(self, url: str) -> bytes:
        path = "/" + url.split("://", 1)[1].split("/", 1)[1]
        response = self.client.get(path)
        assert response.status_code == 200, response.text
        return bytes(response.content)

    def seed(self) -> None:
        """Two uploads mapped (normalized Parquet), rules, a completed job, a comment by the analyst."""
        profile = rj.profile()
        files = []
        for data, name, kind, side in ((rj.bank_bytes(), "bank.csv", "bank", "left"),
                                       (rj.switch_bytes(), "switch.csv", "switch", "right")):
            uploaded = self.client.post("/api/files/upload", data={"file_type": kind},
                                        files={"file": (name, data, "text/csv")}, headers=bearer(self.tokens["admin"]))
            assert uploaded.status_code == 201, uploaded.text
            file_id = uploaded.json()["data"]["id"]
            self.uploads[file_id] = data
            mapped = self.post(f"/api/files/{file_id}/map", {"transformation_rules": profile[side]["mapping"]})
            assert mapped.status_code == 200, mapped.text
            files.append(uuid.UUID(file_id))
        rj.seed_rules(self.container.database, self.org, self.ids["admin"])
        created = self.post("/api/reconciliations", rj.start_body(files[0], files[1]))
        assert created.status_code == 201, created.text
        self.job_id = created.json()["data"]["id"]
        self.container.worker_runner.wake_relay()
        job: dict[str, Any] = {}
        for _ in range(900):
            job = self.get(f"/api/reconciliations/{self.job_id}").json()["data"]
            if job["status"] in ("completed", "failed"):
                break
            time.sleep(0.1)
        assert job["status"] == "completed", job
        exceptions = self.get(f"/api/exceptions?job_id={self.job_id}&per_page=1").json()["data"]
        commented = self.post(f"/api/exceptions/{exceptions[0]['id']}/comments",
                              {"content": "called the acquirer"}, "analyst")
        assert commented.status_code == 201, commented.text
        self.comment_id = commented.json()["data"]["id"]

    def wait(self, export_id: str, who: str = "admin") -> dict[str, Any]:
        self.container.worker_runner.wake_relay()
        export: dict[str, Any] = {}
        for _ in range(1200):
            export = self.get(f"/api/privacy/exports/{export_id}", who).json()["data"]
            if export["status"] not in ("pending", "running"):
                return export
            time.sleep(0.05)
        raise AssertionError(f"export {export_id} still {export['status']}")

    def download(self, export_id: str, who: str = "admin") -> bytes:
        link = self.get(f"/api/privacy/exports/{export_id}/download", who)
        assert link.status_code == 200, link.text
        return self.fetch(link.json()["data"]["url"])

    def actions(self, action: str) -> list[Any]:
        found, query = [], AuditQuery(action=action, limit=500)
        page = self.container.audit_log.list_records(self.org, query)
        found.extend(record.event for record in page.records)
        return found


def _jsonl(archive: zipfile.ZipFile, name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in archive.read(name).splitlines()]


def _write(tmp: Path, name: str, content: bytes) -> str:
    path = tmp / name
    path.write_bytes(content)
    return str(path)


# --- a person's export ----------------------------------------------------------------------------

def user_export_by_self(world: ExportWorld, tmp: Path) -> None:
    asked = world.post("/api/privacy/exports", {"scope": "user"}, "analyst")
    assert asked.status_code == 202, asked.text
    body = asked.json()["data"]
    assert body["pending_approval"] is None and body["export"]["status"] == "pending"
    export_id = body["export"]["id"]
    assert body["export"]["subject_user_id"] == str(world.ids["analyst"])
    done = world.wait(export_id, "analyst")
    assert done["status"] == "completed", done
    content = world.download(export_id, "analyst")
    assert hashlib.sha256(content).hexdigest() == done["sha256"] and len(content) == done["size_bytes"]
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        assert manifest["scope"] == "user" and manifest["subject_user_id"] == str(world.ids["analyst"])
        assert manifest["schema_version"] == world.container.privacy.schema_version()
        profile = _jsonl(archive, "data/profile.jsonl")
        assert [row["id"] for row in profile] == [str(world.ids["analyst"])]
        assert "password_hash" not in profile[0] and "mfa_secret" not in profile[0]
        assert "email" in profile[0]
        sessions = _jsonl(archive, "data/sessions.jsonl")
        assert sessions and {row["user_id"] for row in sessions} == {str(world.ids["analyst"])}
        assert all("token_hash" not in row for row in sessions)
        comments = _jsonl(archive, "data/comments.jsonl")
        assert [row["id"] for row in comments] == [world.comment_id]
        actions = _jsonl(archive, "data/audit_actions.jsonl")
        assert actions and {row["user_id"] for row in actions} == {str(world.ids["analyst"])}
        assert any(row["action"] == "privacy.export.requested" for row in actions)
        counts = {entry["path"]: entry.get("rows") for entry in manifest["files"]}
        assert counts["data/comments.jsonl"] == 1 and counts["data/profile.jsonl"] == 1
        assert "README.md" in counts and not any(name.startswith("objects/") for name in archive.namelist())
    assert verify_archive(_write(tmp, "user.zip", content)).ok
    # audited: the request, the generation, the link; the download itself is an access event
    requested = [e for e in world.actions("privacy.export.requested") if str(e.resource_id) == export_id]
    assert len(requested) == 1 and requested[0].user_id == world.ids["analyst"]
    assert [e for e in world.actions("privacy.export.generated") if str(e.resource_id) == export_id]
    issued = [e for e in world.actions("privacy.export.download_link_issued") if str(e.resource_id) == export_id]
    assert len(issued) == 1 and issued[0].user_id == world.ids["analyst"]
    world.container.access_recorder.flush()
    downloads = [e for e in world.actions("access.export.download")
                 if (e.metadata or {}).get("object", "").endswith(f"{export_id}.zip")]
    assert len(downloads) == 1
    # the link is issued again on request, each time audited
    again = world.get(f"/api/privacy/exports/{export_id}/download", "analyst")
    assert again.status_code == 200 and world.fetch(again.json()["data"]["url"]) == content
    assert len([e for e in world.actions("privacy.export.download_link_issued")
                if str(e.resource_id) == export_id]) == 2


def an_export_expires(world: ExportWorld) -> None:
    """Past its retention the expiry job deletes the object, the row becomes `expired` (audited) and
    no link is issued any more; an export not yet due is left alone."""
    asked = world.post("/api/privacy/exports", {"scope": "user"}, "analyst2")
    export_id = uuid.UUID(asked.json()["data"]["export"]["id"])
    assert world.wait(str(export_id), "analyst2")["status"] == "completed"
    kept_id = uuid.UUID(world.post("/api/privacy/exports", {"scope": "user"}, "analyst2").json()["data"]["export"]["id"])
    assert world.wait(str(kept_id), "analyst2")["status"] == "completed"
    with world.container.database.unit_of_work(world.org) as uow:
        export = uow.data_exports.get(export_id)
        assert export is not None and export.expires_at is not None
        uow.data_exports.update(dataclasses.replace(export, expires_at=export.expires_at - dt.timedelta(days=31)))
        uow.commit()
    storage = world.container.storage
    assert storage.exists(export.storage_path)
    assert expire_data_exports(world.container.privacy) >= 1
    assert not storage.exists(export.storage_path)
    assert world.get(f"/api/privacy/exports/{export_id}", "analyst2").json()["data"]["status"] == "expired"
    gone = world.get(f"/api/privacy/exports/{export_id}/download", "analyst2")
    assert gone.status_code == 409 and gone.json()["error"]["code"] == "EXPORT_EXPIRED"
    assert [e for e in world.actions("privacy.export.expired") if e.resource_id == export_id]
    assert world.get(f"/api/privacy/exports/{kept_id}/download", "analyst2").status_code == 200
    assert expire_data_exports(world.container.privacy) == 0


def user_export_by_admin(world: ExportWorld) -> None:
    asked = world.post("/api/privacy/exports", {"scope": "user", "user_id": str(world.ids["analyst"])})
    assert asked.status_code == 202, asked.text
    export_id = asked.json()["data"]["export"]["id"]
    done = world.wait(export_id)
    assert done["status"] == "completed" and done["requested_by"] == str(world.ids["admin"])
    with zipfile.ZipFile(io.BytesIO(world.download(export_id))) as archive:
        assert [row["id"] for row in _jsonl(archive, "data/profile.jsonl")] == [str(world.ids["analyst"])]
    # the subject may read it and download it too; another analyst may not even see it
    assert world.get(f"/api/privacy/exports/{export_id}", "analyst").status_code == 200
    assert world.get(f"/api/privacy/exports/{export_id}", "analyst2").status_code == 404
    assert world.get(f"/api/privacy/exports/{export_id}/download", "analyst2").status_code == 404


def user_export_refused_to_another_analyst(world: ExportWorld) -> None:
    refused = world.post("/api/privacy/exports", {"scope": "user", "user_id": str(world.ids["analyst"])}, "analyst2")
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["code"] == "PERMISSION_DENIED"
    denied = [e for e in world.actions("privacy.export.requested")
              if e.user_id == world.ids["analyst2"] and (e.metadata or {}).get("reason")]
    assert len(denied) == 1 and denied[0].metadata["subject_user_id"] == str(world.ids["analyst"])
    # nor the organization's, nor a user of another organization (404: ids do not leak)
    assert world.post("/api/privacy/exports", {"scope": "organization"}, "analyst").status_code == 403
    assert world.post("/api/privacy/exports", {"scope": "organization"}, "supervisor").status_code == 403
    assert world.post("/api/privacy/exports", {"scope": "user", "user_id": str(uuid.uuid4())}).status_code == 404
    bad = world.post("/api/privacy/exports", {"scope": "everything"})
    assert bad.status_code == 400 and "scope" in bad.text


# --- the organization's export ----------------------------------------------------------------------

def organization_export_through_an_approval(world: ExportWorld, tmp: Path) -> tuple[str, bytes]:
    asked = world.post("/api/privacy/exports", {"scope": "organization"}, "admin2")
    assert asked.status_code == 202, asked.text
    body = asked.json()["data"]
    assert body["export"] is None and body["pending_approval"]["type"] == "data_export"
    approval_id = body["pending_approval"]["id"]
    # nothing is generated while pending; the requester cannot approve their own request
    assert world.get(f"/api/approvals/{approval_id}", "admin2").json()["data"]["approval"]["metadata"] == {
        "scope": "organization"}
    self_approval = world.post(f"/api/approvals/{approval_id}/approve", {}, "admin2")
    assert self_approval.status_code == 403, self_approval.text
    approved = world.post(f"/api/approvals/{approval_id}/approve", {}, "supervisor")
    assert approved.status_code == 200, approved.text
    detail = world.get(f"/api/approvals/{approval_id}", "admin2").json()["data"]
    export_id = detail["approval"]["metadata"]["export_id"]
    done = world.wait(export_id, "admin2")
    assert done["status"] == "completed", done
    assert done["approval_id"] == approval_id and done["requested_by"] == str(world.ids["admin2"])
    assert done["scope"] == "organization" and done["subject_user_id"] is None
    content = world.download(export_id, "admin2")
    assert hashlib.sha256(content).hexdigest() == done["sha256"]
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        assert manifest["scope"] == "organization" and manifest["approval_id"] == approval_id
        assert manifest["schema_version"] == world.container.privacy.schema_version()
        listed = {entry["path"]: entry for entry in manifest["files"]}
        assert set(listed) == set(archive.namelist()) - {"manifest.json"}
        for name, entry in listed.items():
            assert hashlib.sha256(archive.read(name)).hexdigest() == entry["sha256"], name
        users = _jsonl(archive, "data/users.jsonl")
        assert {row["id"] for row in users} == {str(i) for i in world.ids.values()}
        assert all("password_hash" not in row and "mfa_secret" not in row for row in users)
        assert listed["data/users.jsonl"]["rows"] == len(world.ids)
        assert [row["id"] for row in _jsonl(archive, "data/organization.jsonl")] == [str(world.org)]
        files = _jsonl(archive, "data/files.jsonl")
        assert {row["id"] for row in files} == set(world.uploads)
        prefix = f"organizations/{world.org}/"
        for row in files:  # the files as uploaded, byte for byte
            assert archive.read("objects/" + row["storage_path"].removeprefix(prefix)) == world.uploads[row["id"]]
        normalized = _jsonl(archive, "data/normalized_files.jsonl")
        assert len(normalized) == 2
        for row in normalized:
            parquet = archive.read("objects/" + row["storage_path"].removeprefix(prefix))
            assert parquet[:4] == b"PAR1"
        assert [row["id"] for row in _jsonl(archive, "data/reconciliation_jobs.jsonl")] == [world.job_id]
        assert f"objects/processed/{world.job_id}/results.parquet" in listed
        exceptions = _jsonl(archive, "data/exceptions.jsonl")
        assert exceptions and listed["data/exceptions.jsonl"]["rows"] == len(exceptions)
        assert {row["id"] for row in _jsonl(archive, "data/exception_comments.jsonl")} >= {world.comment_id}
        assert approval_id in {row["id"] for row in _jsonl(archive, "data/approvals.jsonl")}
        assert _jsonl(archive, "data/matching_rules.jsonl")
        # the audit chain, in sequence order, linked, up to the head the manifest names
        chain = _jsonl(archive, "audit/chain.jsonl")
        sequences = [row["sequence_number"] for row in chain]
        assert sequences == list(range(1, len(chain) + 1))
        assert manifest["audit_chain"]["last_sequence"] == sequences[-1]
        assert manifest["audit_chain"]["last_hash"] == chain[-1]["hash"]
        assert all(chain[i]["previous_hash"] == chain[i - 1]["hash"] for i in range(1, len(chain)))
        assert any(row["action"] == "approval.approved" for row in chain)
        assert "README.md" in listed and b"verify-export" in archive.read("README.md")
    path = _write(tmp, "organization.zip", content)
    result = verify_archive(path)
    assert result.ok, result.message
    assert cli_main(["privacy", "verify-export", path]) == 0
    assert [e for e in world.actions("privacy.export.generated") if str(e.resource_id) == export_id]
    return export_id, content


def tampered_exports_fail(content: bytes, tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # one byte of one file changed (the archive rewritten, so only the manifest can tell)
    target = "data/users.jsonl"
    rewritten = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(content)) as source, zipfile.ZipFile(rewritten, "w", zipfile.ZIP_DEFLATED) as out:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename == target:
                data = data.replace(b'"role":"analyst"', b'"role":"admin!!"', 1)
                assert len(data) == len(source.read(info.filename))
            out.writestr(info.filename, data)
    path = _write(tmp, "tampered.zip", rewritten.getvalue())
    result = verify_archive(path)
    assert not result.ok and result.message.startswith(target) and "SHA-256" in result.message
    capsys.readouterr()
    assert cli_main(["privacy", "verify-export", path]) == 1
    assert f"MISMATCH {target}" in capsys.readouterr().err
    # one byte flipped in the archive itself, inside a file's compressed data
    raw = bytearray(content)
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        info = archive.getinfo("data/exceptions.jsonl")
    start = info.header_offset + 30 + int.from_bytes(raw[info.header_offset + 26:info.header_offset + 28], "little") \
        + int.from_bytes(raw[info.header_offset + 28:info.header_offset + 30], "little")
    raw[start + info.compress_size // 2] ^= 0x01
    flipped = verify_archive(_write(tmp, "flipped.zip", bytes(raw)))
    assert not flipped.ok and flipped.message.startswith("data/exceptions.jsonl"), flipped.message
    # an audit row removed and the manifest rewritten to match: the chain's linkage still tells
    rechained = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(content)) as source, zipfile.ZipFile(rechained, "w") as out:
        manifest = json.loads(source.read("manifest.json"))
        for info in source.infolist():
            if info.filename == "manifest.json":
                continue
            data = source.read(info.filename)
            if info.filename == "audit/chain.jsonl":
                lines = data.splitlines(keepends=True)
                data = b"".join(lines[:2] + lines[3:])
                for entry in manifest["files"]:
                    if entry["path"] == info.filename:
                        entry.update(sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data), rows=len(lines) - 1)
            out.writestr(info.filename, data)
        out.writestr("manifest.json", json.dumps(manifest))
    broken = verify_archive(_write(tmp, "rechained.zip", rechained.getvalue()))
    assert not broken.ok and broken.message.startswith("audit/chain.jsonl") and "sequence 4" in broken.message, \
        broken.message


def organization_export_is_not_another_tenants(world: ExportWorld, other: ExportWorld, export_id: str) -> None:
    assert other.get(f"/api/privacy/exports/{export_id}").status_code == 404
    assert other.get(f"/api/privacy/exports/{export_id}/download").status_code == 404
