"""The storage and scanner builders of the composition root, and the `storage` health check."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from reckai.adapters.clamav.disabled import DisabledScanner
from reckai.adapters.clamav.scanner import ClamdScanner
from reckai.adapters.filesystem.storage import FileSystemStorage
from reckai.adapters.memory.scanner import InMemoryScanner
from reckai.adapters.memory.storage import InMemoryFileStorage
from reckai.bootstrap import bootstrap_in_memory, build_storage, storage_health
from reckai.settings import Mode, ScannerSettings, Settings, StorageSettings


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_in_memory_container_has_storage_and_a_disabled_scanner() -> None:
    container = bootstrap_in_memory()
    assert isinstance(container.storage, InMemoryFileStorage)
    assert isinstance(container.scanner, DisabledScanner)
    report = container.health_checks["storage"]()
    assert report.ok
    assert "virus scanning disabled" in report.detail


def test_in_memory_scanner_down_fails_the_storage_health() -> None:
    container = bootstrap_in_memory(Settings(scanner=ScannerSettings(enabled=True)))
    assert isinstance(container.scanner, InMemoryScanner)
    assert container.health_checks["storage"]().ok
    container.scanner.available = False
    report = container.health_checks["storage"]()
    assert not report.ok
    assert "virus scanner down" in report.detail


def test_filesystem_storage_is_built_and_really_probed(tmp_path: Path) -> None:
    storage, scanner = build_storage(Settings(storage=StorageSettings(filesystem_root=tmp_path / "files")))
    assert isinstance(storage, FileSystemStorage)
    report = storage_health(storage, scanner)
    assert report.ok, report.detail
    assert "AES-256-GCM" in report.detail and "virus scanning disabled" in report.detail
    assert (tmp_path / "files" / "health").is_dir()  # the probe really went to disk


def test_unwritable_storage_root_fails_the_health_check(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the storage root should be")
    report = storage_health(*build_storage(Settings(storage=StorageSettings(filesystem_root=blocker))))
    assert not report.ok
    assert "StorageUnavailable" in report.detail


def test_enabled_scanner_that_is_down_fails_the_health_check(tmp_path: Path) -> None:
    settings = Settings(
        storage=StorageSettings(filesystem_root=tmp_path),
        scanner=ScannerSettings(enabled=True, clamd_host="127.0.0.1", clamd_port=_closed_port()),
    )
    storage, scanner = build_storage(settings)
    assert isinstance(scanner, ClamdScanner)
    report = storage_health(storage, scanner)
    assert not report.ok
    assert "virus scanner down" in report.detail


@pytest.mark.parametrize(
    ("storage", "scanner", "message"),
    [
        (StorageSettings(backend="s3"), ScannerSettings(), "S3_ENDPOINT"),
        (StorageSettings(backend="ftp"), ScannerSettings(), "STORAGE_BACKEND"),
        (StorageSettings(), ScannerSettings(enabled=True), "CLAMD_HOST"),
    ],
)
def test_incomplete_configuration_is_refused(
    tmp_path: Path, storage: StorageSettings, scanner: ScannerSettings, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        build_storage(Settings(mode=Mode.EMBEDDED, storage=storage, scanner=scanner))
