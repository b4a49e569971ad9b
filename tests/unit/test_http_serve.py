"""`reckai serve`: refuses bad configuration in one line; serves, runs the embedded worker, and
closes the container on SIGTERM."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

import reckai.bootstrap
from reckai.bootstrap import Container, bootstrap_in_memory
from reckai.entrypoints.cli import serve
from reckai.entrypoints.cli.main import build_parser, main


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    yield
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)


def test_serve_is_a_registered_subcommand() -> None:
    args = build_parser().parse_args(["serve", "--port", "9001"])
    assert args.handler is serve.run and args.port == 9001


def test_production_without_settings_exits_with_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RECKAI_MODE", "production")
    for name in ("DATABASE_URL", "MIGRATION_DATABASE_URL", "REDIS_URL", "S3_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    assert main(["serve"]) == serve.EXIT_CONFIGURATION
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("reckai serve: production mode requires DATABASE_URL")
    assert "Traceback" not in err


def test_production_with_development_secrets_is_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in {
        "RECKAI_MODE": "production",
        "DATABASE_URL": "postgresql://app@db/reckai",
        "MIGRATION_DATABASE_URL": "postgresql://owner@db/reckai",
        "REDIS_URL": "redis://redis:6379/0",
        "STORAGE_BACKEND": "s3",
        "S3_ENDPOINT": "s3:9000",
        "S3_ACCESS_KEY": "access",
        "S3_SECRET_KEY": "secret",
        "AUDIT_ANCHOR_BUCKET": "reckai-audit-anchors",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("JWT_SECRET", raising=False)
    assert main(["serve"]) == serve.EXIT_CONFIGURATION
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "JWT_SECRET is the development default" in err


def test_base_url_is_clickable() -> None:
    assert serve.base_url("0.0.0.0", 8000) == "http://127.0.0.1:8000"
    assert serve.base_url("127.0.0.1", 8080) == "http://127.0.0.1:8080"
    assert serve.base_url("::1", 8000) == "http://[::1]:8000"


class WorkerRunner:
    def __init__(self) -> None:
        self.running = False
        self.started = 0
        self.stopped = 0

    def start(self) -> None:
        self.running = True
        self.started += 1

    def stop(self) -> None:
        self.running = False
        self.stopped += 1


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM delivery is POSIX")
def test_serve_answers_runs_the_worker_and_closes_on_sigterm(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    port = _free_port()
    monkeypatch.setenv("RECKAI_MODE", "embedded")
    monkeypatch.setenv("RECKAI_VAR_DIR", str(tmp_path / "var"))  # its generated secrets stay in the test's dir
    worker = WorkerRunner()
    closed: list[bool] = []
    built: list[Container] = []

    def in_memory_bootstrap(settings):  # type: ignore[no-untyped-def]
        container = dataclasses.replace(bootstrap_in_memory(settings), worker_runner=worker)
        container.on_close(lambda: closed.append(True))
        built.append(container)
        return container

    monkeypatch.setattr(reckai.bootstrap, "bootstrap", in_memory_bootstrap)
    seen: dict[str, object] = {}

    def probe_then_stop() -> None:
        url = f"http://127.0.0.1:{port}/health"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    seen["status"] = response.status
                    seen["request_id"] = response.headers["X-Request-ID"]
                    seen["body"] = json.loads(response.read())
                    seen["worker_running"] = worker.running
                    break
            except OSError:
                time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGTERM)

    prober = threading.Thread(target=probe_then_stop, daemon=True)
    prober.start()
    code = main(["serve", "--port", str(port)])
    prober.join(5)

    assert code == 0
    assert seen["status"] == 200 and seen["request_id"]
    assert seen["body"]["success"] is True  # type: ignore[index]
    assert seen["worker_running"] is True
    assert (worker.started, worker.stopped, worker.running) == (1, 1, False)
    assert closed == [True]
    captured = capsys.readouterr()
    assert f"http://127.0.0.1:{port}/docs" in captured.err
    logged = [json.loads(line) for line in captured.out.splitlines() if line.startswith("{")]
    assert any(
        entry["action"] == "http.request" and entry["metadata"]["path"] == "/health" for entry in logged
    )
    assert any(entry["action"] == "server.stopped" for entry in logged)
