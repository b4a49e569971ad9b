"""A bank team's month through the API alone, on PostgreSQL with the worker running.

What the product promises a reconciliation team, end to end and over HTTP only: a matching rule
through maker-checker, a resolution threshold through a `system_setting` approval, five days of
bank and switch files (across a year end) into one stream, a run per day carrying open items
forward, the team working the breaks (assign, comment, resolve; a large one through a checker),
the reports generated and downloaded, and the auditor reading, verifying and exporting the audit
trail. Every figure asserted is derived from the generated files, not read back from the product.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import time
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from litestar.testing import TestClient

from reckai.adapters.memory.scanner import InMemoryScanner
from reckai.bootstrap import Container, bootstrap
from reckai.entrypoints.http.app import create_app
from reckai.settings import DatabaseSettings, MailerSettings, Mode, Settings, StorageSettings
from tests.support import reconciliation_jobs as rj
from tests.support.identity import bearer, create_user_with_role, login, onboard
from tests.support.streams import EXACT_RULE, bank_csv, switch_csv

pytestmark = pytest.mark.integration

DAYS = [dt.date(2025, 12, 29) + dt.timedelta(days=i) for i in range(5)]  # 29 Dec .. 2 Jan
PAIRS_PER_DAY = 12
THRESHOLD = "1000.00"  # NGN: closing a break of this amount or more needs a checker


def _ref(day: int, kind: int, n: int) -> str:
    return f"{day + 1}{kind}{n:010d}"


def month_files() -> list[dict[str, list[tuple[str, str, str]]]]:
    """Per day: bank rows (date, ref, amount) and switch rows (moment, ref, amount).

    Each day: PAIRS_PER_DAY clean pairs; one bank row whose switch counterpart comes in the next
    day's file (a timing difference the next run closes; the last day's stays open); one switch row
    the bank never shows (small: the analyst writes it off); one large switch row missing from the
    bank (NGN 5,000: its closing needs a checker)."""
    days: list[dict[str, list[tuple[str, str, str]]]] = []
    for i, day in enumerate(DAYS):
        bank, switch = [], []
        for n in range(PAIRS_PER_DAY):
            ref, amount = _ref(i, 1, n), f"{100 + n}.00"
            bank.append((day.isoformat(), ref, amount))
            switch.append((f"{day.isoformat()} 10:{n:02d}:00", ref, amount))
        bank.append((day.isoformat(), _ref(i, 2, 0), "250.00"))  # its switch row arrives tomorrow
        if i > 0:
            switch.append((f"{DAYS[i - 1].isoformat()} 23:59:00", _ref(i - 1, 2, 0), "250.00"))
        switch.append((f"{day.isoformat()} 12:00:00", _ref(i, 3, 0), "40.00"))
        switch.append((f"{day.isoformat()} 13:00:00", _ref(i, 4, 0), "5000.00"))
        days.append({"bank": bank, "switch": switch})
    return days


@pytest.fixture(scope="module")
def container(pg_database: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    root: Path = tmp_path_factory.mktemp("month")
    settings = Settings(mode=Mode.EMBEDDED, database=DatabaseSettings(url=pg_database.app_url, pool_size=6),
                        storage=StorageSettings(backend="filesystem", filesystem_root=root / "storage"),
                        mailer=MailerSettings(backend="file", outbox_dir=root / "mail"))
    built = bootstrap(settings, scanner=InMemoryScanner())
    built.worker_runner.start()
    try:
        yield built
    finally:
        built.worker_runner.stop()
        built.close()


class Team:
    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.org_id, admin = onboard(client)
        self.tokens = {"admin": login(client, admin.org_code, admin.email, admin.password)}
        self.ids = {"admin": admin.user_id}
        for role in ("analyst", "supervisor", "auditor"):
            user_id, token = create_user_with_role(self.client, self.tokens["admin"], role)
            self.ids[role], self.tokens[role] = uuid.UUID(str(user_id)), token

    def call(self, who: str, method: str, path: str, status: int, **kwargs: Any) -> Any:
        response = self.client.request(method, path, headers=bearer(self.tokens[who]), **kwargs)
        assert response.status_code == status, f"{method} {path}: {response.status_code} {response.text}"
        return response.json() if "json" in response.headers.get("content-type", "") else response.content

    def data(self, who: str, method: str, path: str, status: int, **kwargs: Any) -> Any:
        return self.call(who, method, path, status, **kwargs)["data"]

    def upload(self, who: str, data: bytes, name: str, file_type: str) -> str:
        side = "left" if file_type == "bank" else "right"
        file = self.data(who, "POST", "/api/files/upload", 201, data={"file_type": file_type},
                         files={"file": (name, data, "text/csv")})
        mapped = self.data(who, "POST", f"/api/files/{file['id']}/map", 200,
                           json={"transformation_rules": rj.profile()[side]["mapping"]})
        assert mapped["status"] == "normalized", mapped
        return str(file["id"])

    def until(self, who: str, path: str, done: tuple[str, ...], seconds: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + seconds
        while True:
            body: dict[str, Any] = self.data(who, "GET", path, 200)
            if body["status"] in done:
                return body
            assert time.monotonic() < deadline, body
            time.sleep(0.1)

    def approve(self, approval_id: str, who: str = "supervisor") -> dict[str, Any]:
        return self.data(who, "POST", f"/api/approvals/{approval_id}/approve", 200, json={"comment": "checked"})  # type: ignore[no-any-return]

    def download(self, who: str, link: dict[str, Any]) -> bytes:
        url = link["url"]
        response = self.client.get(url[url.index("/api/"):] if url.startswith("http") else url,
                                   headers=bearer(self.tokens[who]))
        assert response.status_code == 200, response.text
        return response.content


def test_a_month_of_daily_files_worked_reported_and_audited(container: Container) -> None:
    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        team = Team(client)
        # -- set-up through maker-checker: the matching rule and the resolution threshold ------------
        created = team.call("admin", "POST", "/api/rules", 202, json={"name": "rrn-exact", "definition": EXACT_RULE})
        rule_approval = created["data"]["approval"]["id"]
        team.call("admin", "POST", f"/api/approvals/{rule_approval}/approve", 403, json={})  # no self-approval
        team.approve(rule_approval)
        setting = team.data("admin", "POST", "/api/approvals", 201, json={
            "type": "system_setting", "title": "Resolution threshold", "description": "money at stake",
            "metadata": {"key": "workflow", "value": {"resolution_approval_threshold": {"NGN": THRESHOLD}}}})
        team.approve(setting["id"])

        # -- five days of files into one stream, a run a day ----------------------------------------
        days = month_files()
        stream: str | None = None
        jobs: list[str] = []
        for i, files in enumerate(days):
            # bank statements come from the admin's desk, switch files from the analyst's (each user
            # has an upload allowance per hour)
            bank = team.upload("admin", bank_csv(files["bank"]), f"bank-{DAYS[i]}.csv", "bank")
            switch = team.upload("analyst", switch_csv(files["switch"]), f"switch-{DAYS[i]}.csv", "switch")
            if stream is None:
                stream = team.data("analyst", "POST", "/api/streams", 201, json={
                    "name": "POS vs bank 0123", "currency": "NGN", "leading_side": "right",
                    "left": {"template_file_id": bank}, "right": {"template_file_id": switch}})["id"]
            for file_id in (bank, switch):
                team.data("analyst", "POST", f"/api/streams/{stream}/files", 201, json={"file_id": file_id})
            run = team.data("analyst", "POST", f"/api/streams/{stream}/runs", 201)
            job = team.until("analyst", f"/api/reconciliations/{run['job_id']}", ("completed", "failed"))
            assert job["status"] == "completed", job
            jobs.append(run["job_id"])
        details = team.data("auditor", "GET", f"/api/streams/{stream}", 200)
        assert [r["run_number"] for r in details["runs"]] == [1, 2, 3, 4, 5]
        # each day's timing difference was closed by the next day's run
        assert sum(r["figures"]["closed_by_later_match"] for r in details["runs"]) == len(DAYS) - 1
        assert details["open_items"] == {"left": 1, "right": 2 * len(DAYS)}

        # -- the breaks: one per unmatched row, none duplicated across runs ---------------------------
        listing = team.call("analyst", "GET", "/api/exceptions?status=open&per_page=100", 200)
        open_items = listing["data"]
        assert listing["meta"]["total"] == 2 * len(DAYS) + 1
        by_amount: dict[str, list[dict[str, Any]]] = {}
        for item in open_items:
            by_amount.setdefault(str(item["amount"]), []).append(item)
        small, large = by_amount["40.00"], by_amount["5000.00"]
        assert len(small) == len(large) == len(DAYS) and len(by_amount["250.00"]) == 1
        resolved = team.call("analyst", "GET", "/api/exceptions?status=resolved&per_page=100", 200)
        assert resolved["meta"]["total"] == len(DAYS) - 1  # the carried timing differences, closed by the engine

        # assign, comment, write off the small ones in bulk (under the threshold: no checker)
        first = small[0]["id"]
        team.data("admin", "POST", f"/api/exceptions/{first}/assign", 200,
                  json={"assignee_id": str(team.ids["analyst"])})
        team.data("analyst", "POST", f"/api/exceptions/{first}/comments", 201,
                  json={"content": "Switch-only POS rows: acquirer fee reversals, written off"})
        outcomes = team.data("analyst", "POST", "/api/exceptions/bulk/resolve", 200, json={
            "exception_ids": [i["id"] for i in small], "resolution_code": "written_off",
            "resolution_note": "fee reversal"})
        assert all(o["pending_approval"] is None and o["exception"]["status"] == "resolved" for o in outcomes)
        # the large ones wait for a checker; the maker cannot approve them, the supervisor can
        pending = []
        for item in large:
            answer = team.call("analyst", "POST", f"/api/exceptions/{item['id']}/resolve", 202, json={
                "resolution_code": "written_off", "resolution_note": "settled off-system"})["data"]
            assert answer["exception"]["status"] != "resolved"
            pending.append(answer["pending_approval"]["id"])
        team.call("analyst", "POST", f"/api/approvals/{pending[0]}/approve", 403, json={})
        for approval_id in pending:
            team.approve(approval_id)
        after = team.call("analyst", "GET", "/api/exceptions?status=open&per_page=100", 200)
        assert [i["amount"] for i in after["data"]] == ["250.00"]  # only the last day's timing difference
        dashboard = team.data("analyst", "GET", "/api/dashboard", 200)
        open_counts = [n for buckets in dashboard["open_exceptions"]["by_severity"].values() for n in buckets.values()]
        assert sum(open_counts) == 1

        # -- the reports, generated by the worker and downloaded --------------------------------------
        period = {"period_start": DAYS[0].isoformat(), "period_end": DAYS[-1].isoformat()}
        today = dt.datetime.now(ZoneInfo("Africa/Lagos")).date()  # the organization's default zone
        run_days = {"period_start": (today - dt.timedelta(days=1)).isoformat(), "period_end": today.isoformat()}
        daily = team.data("analyst", "POST", "/api/reports", 202,
                          json={"type": "daily", "format": "csv", **run_days})["report"]
        aging = team.data("analyst", "POST", "/api/reports", 202, json={"type": "aging", "format": "excel"})["report"]
        team.call("analyst", "POST", "/api/reports", 403, json={"type": "audit", "format": "pdf", **period})
        # the spec gives auditors no reports:generate: the admin asks for the audit report, the auditor reads it
        audit = team.data("admin", "POST", "/api/reports", 202, json={"type": "audit", "format": "pdf", **period})["report"]
        for report in (daily, aging, audit):
            done = team.until("auditor", f"/api/reports/{report['id']}", ("completed", "failed"))
            assert done["status"] == "completed", done
        link = team.data("analyst", "GET", f"/api/reports/{daily['id']}/download", 200)
        with zipfile.ZipFile(io.BytesIO(team.download("analyst", link))) as archive:
            names = archive.namelist()
            assert "cover.csv" in names and len(names) > 2
            tables = {name: list(csv.DictReader(io.StringIO(archive.read(name).decode("utf-8"))))
                      for name in names}
        # the daily report covers the runs completed on its days (today, in the organization's zone)
        assert sorted(row["job_id"] for row in tables["jobs.csv"]) == sorted(jobs)
        assert sum(int(row["matched_pairs"]) for row in tables["jobs.csv"]) == PAIRS_PER_DAY * len(DAYS) + len(DAYS) - 1
        # amounts per side over the period: each day's timing difference is a break of its day's run
        # and a match of the next day's, so it counts once, as matched (the last one stays a break);
        # the switch rows the bank never shows (small and large), carried through every later run,
        # count once each
        matched_bank = sum(100 + n for n in range(PAIRS_PER_DAY)) * len(DAYS) + 250 * (len(DAYS) - 1)
        sides = {row["side"]: row for row in tables["amounts_per_side.csv"]}
        assert sides["left"] == {"side": "left", "currency": "NGN", "matched_rows": str(PAIRS_PER_DAY * len(DAYS) + 4),
                                 "matched_amount": f"{matched_bank}.00", "unmatched_rows": "1",
                                 "unmatched_amount": "250.00"}
        assert sides["right"]["matched_amount"] == f"{matched_bank}.00"
        assert sides["right"]["unmatched_rows"] == str(2 * len(DAYS))
        assert sides["right"]["unmatched_amount"] == f"{5040 * len(DAYS)}.00"
        # the stream's period (today's: every run started today) with its runs' figures
        (period,) = tables["stream_periods.csv"]
        assert (period["stream"], period["status"], period["runs"]) == ("POS vs bank 0123", "open", str(len(DAYS)))
        assert int(period["new_rows_left"]) == (PAIRS_PER_DAY + 1) * len(DAYS)
        assert int(period["matched_pairs"]) == PAIRS_PER_DAY * len(DAYS) + len(DAYS) - 1
        assert int(period["closed_by_later_match"]) == len(DAYS) - 1
        ngn = next(row for row in tables["stream_period_amounts.csv"] if row["currency"] == "NGN")
        assert ngn["matched_left"] == f"{matched_bank}.00"
        overview = {row["metric"]: row["value"] for row in tables["overview.csv"]}
        assert int(overview["matched_pairs"]) == PAIRS_PER_DAY * len(DAYS) + len(DAYS) - 1
        workbook = openpyxl.load_workbook(io.BytesIO(team.download(
            "auditor", team.data("auditor", "GET", f"/api/reports/{aging['id']}/download", 200))), read_only=True)
        oldest = list(workbook["oldest_items"].iter_rows(values_only=True))
        assert len(oldest) == 2 and 250 in oldest[1]  # the header and the one open break, NGN 250.00
        team.call("analyst", "GET", f"/api/reports/{audit['id']}/download", 403)
        pdf = team.download("auditor", team.data("auditor", "GET", f"/api/reports/{audit['id']}/download", 200))
        assert pdf.startswith(b"%PDF")

        # -- the auditor: the trail, its verification and its export ------------------------------------
        trail = team.call("auditor", "GET", "/api/audit-logs?action=exception.resolved&per_page=100", 200)
        assert len(trail["data"]) >= len(DAYS)
        verified = team.data("auditor", "GET", "/api/audit-logs/verify", 200)
        assert verified["intact"] is True, verified
        exported = team.call("auditor", "GET", "/api/audit-logs/export", 200)
        rows = list(csv.DictReader(io.StringIO(exported.decode("utf-8"))))
        actions = {row["action"] for row in rows}
        assert {"approval.requested", "approval.approved", "exception.assigned", "exception.commented",
                "exception.resolved", "file.uploaded", "file.normalized", "stream.created", "stream.run_started",
                "reconciliation.job.completed", "report.generated", "report.download_link_issued"} <= actions
        team.call("analyst", "GET", "/api/audit-logs", 403)
