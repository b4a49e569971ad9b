"""Render one page of each PDF report over tests/data/card-vs-bank-a to PNG, for docs/reports.md:

    .venv/bin/python -m tests.support.report_samples docs/images/reports

A job is run on the in-memory container (the same as tests/unit/test_reports_http.py), each report
type is generated as PDF by the report use cases, and `pdftoppm` renders the page that best shows
it (the first page after the cover, with a chart where the report has one)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from litestar.testing import TestClient

from reckai.adapters.memory.scanner import InMemoryScanner
from reckai.application.reports.generation import generate_report
from reckai.bootstrap import bootstrap_in_memory
from reckai.entrypoints.http.app import create_app
from tests.support import reconciliation_jobs as rj
from tests.support.identity import bearer, login, onboard

PAGES = {"daily": 3, "aging": 2, "sla": 2, "channel_trend": 3, "audit": 2}


def main(target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    container = bootstrap_in_memory(scanner=InMemoryScanner())
    container.worker_runner.start()
    try:
        with TestClient(create_app(container)) as client:
            org, admin = onboard(client, name="Lagos Microfinance Bank")
            organization_id = uuid.UUID(str(org))
            h = bearer(login(client, admin.org_code, admin.email, admin.password))
            profile, files = rj.profile(), []
            for data, name, kind, side in ((rj.bank_bytes(), "bank.csv", "bank", "left"),
                                           (rj.switch_bytes(), "switch.csv", "switch", "right")):
                file_id = client.post("/api/files/upload", data={"file_type": kind},
                                      files={"file": (name, data, "text/csv")}, headers=h).json()["data"]["id"]
                client.post(f"/api/files/{file_id}/map", json={"transformation_rules": profile[side]["mapping"]},
                            headers=h)
                files.append(uuid.UUID(file_id))
            rj.seed_rules(container.database, organization_id, admin.user_id)
            job = client.post("/api/reconciliations", json=rj.start_body(files[0], files[1]), headers=h).json()["data"]
            container.worker_runner.wake_relay()
            while client.get(f"/api/reconciliations/{job['id']}", headers=h).json()["data"]["status"] not in (
                    "completed", "failed"):
                time.sleep(0.1)
            container.worker_runner.stop()
            for kind, page in PAGES.items():
                body = {"type": kind, "format": "pdf", **({"job_id": job["id"]} if kind == "daily" else {})}
                report = client.post("/api/reports", json=body, headers=h).json()["data"]["report"]
                generate_report(container.reports, organization_id, uuid.UUID(report["id"]))
                with container.database.unit_of_work(organization_id) as uow:
                    stored = uow.reports.get(uuid.UUID(report["id"]))
                assert stored is not None and stored.status.value == "completed", stored
                with container.storage.open(stored.storage_path) as stream, \
                        tempfile.NamedTemporaryFile(suffix=".pdf") as pdf:
                    pdf.write(stream.read())
                    pdf.flush()
                    subprocess.run(["pdftoppm", "-png", "-r", "60", "-f", str(page), "-l", str(page),
                                    "-singlefile", pdf.name, str(target / f"{kind}")], check=True)
                print(target / f"{kind}.png")
    finally:
        container.worker_runner.stop()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/images/reports"))
