"""VirusScanner over clamd's INSTREAM protocol (TCP or Unix socket).

    client: "zINSTREAM\\0", then chunks as <4-byte big-endian length><bytes>, then <0000>
    clamd:  "stream: OK\\0" | "stream: <signature> FOUND\\0" | "INSTREAM size limit exceeded. ERROR\\0"
            | "<anything> ERROR\\0"

Fail closed (see the port): a refused connection, a timeout, an unexpected answer and any limit
are errors, never "clean". With `AlertExceedsMax yes` clamd reports files beyond MaxFileSize /
MaxScanSize / recursion limits as `Heuristics.Limits.Exceeded.* FOUND`; those mean "not fully
scanned" and become ScanLimitExceeded rather than an infection. clamd's StreamMaxLength must be at
least the largest upload allowed (Debian's default is 25 MB); docs/storage.md has the settings.
"""

from __future__ import annotations

import socket
import struct
from typing import TYPE_CHECKING

from reckai.application.ports.health import HealthReport
from reckai.application.ports.scanner import (
    ScanLimitExceeded,
    ScannerUnavailable,
    ScanResult,
    ScanVerdict,
)
from reckai.application.ports.storage import ByteSource, iter_chunks

_CHUNK_BYTES = 256 * 1024
_MAX_REPLY_BYTES = 4096
_LIMIT_SIGNATURE_PREFIX = "Heuristics.Limits.Exceeded"


class ClamdScanner:
    def __init__(self, *, host: str | None = None, port: int = 3310, socket_path: str | None = None,
                 timeout_seconds: float = 120.0, connect_timeout_seconds: float = 5.0) -> None:
        if (host is None) == (socket_path is None):
            raise ValueError("give exactly one of host (TCP) or socket_path (Unix socket)")
        self._host = host
        self._port = port
        self._socket_path = socket_path
        self._timeout = timeout_seconds
        self._connect_timeout = connect_timeout_seconds

    @property
    def enabled(self) -> bool:
        return True

    @property
    def address(self) -> str:
        return f"unix:{self._socket_path}" if self._socket_path else f"{self._host}:{self._port}"

    def scan(self, source: ByteSource) -> ScanResult:
        chunks = iter_chunks(source, _CHUNK_BYTES)
        sent = 0
        with self._connect() as connection:
            try:
                connection.sendall(b"zINSTREAM\0")
                for chunk in chunks:  # errors raised by the source propagate unchanged
                    connection.sendall(struct.pack(">I", len(chunk)) + chunk)
                    sent += len(chunk)
                connection.sendall(struct.pack(">I", 0))
            except OSError as exc:
                # clamd closes the connection as soon as StreamMaxLength is crossed, then our
                # send fails; its reason may still be waiting to be read.
                reply = _read_reply(connection, tolerate_errors=True)
                if reply:
                    return _parse(reply, sent)
                raise ScannerUnavailable(f"clamd at {self.address} dropped the stream: {exc}") from exc
            try:
                reply = _read_reply(connection, tolerate_errors=False)
            except OSError as exc:
                raise ScannerUnavailable(f"no verdict from clamd at {self.address}: {exc}") from exc
        return _parse(reply, sent)

    def ping(self) -> None:
        with self._connect() as connection:
            try:
                connection.sendall(b"zPING\0")
                reply = _read_reply(connection, tolerate_errors=False)
            except OSError as exc:
                raise ScannerUnavailable(f"clamd at {self.address} did not answer PING: {exc}") from exc
        if reply != "PONG":
            raise ScannerUnavailable(f"clamd at {self.address} answered PING with {reply[:80]!r}")

    def health(self) -> HealthReport:
        try:
            self.ping()
        except ScannerUnavailable as exc:
            return HealthReport(ok=False, detail=f"virus scanner down: {exc}")
        return HealthReport(ok=True, detail=f"virus scanning by clamd at {self.address}")

    def _connect(self) -> socket.socket:
        try:
            if self._socket_path:
                connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                connection.settimeout(self._connect_timeout)
                try:
                    connection.connect(self._socket_path)
                except BaseException:
                    connection.close()
                    raise
            else:
                connection = socket.create_connection((self._host, self._port), timeout=self._connect_timeout)
        except OSError as exc:
            raise ScannerUnavailable(f"cannot connect to clamd at {self.address}: {exc}") from exc
        connection.settimeout(self._timeout)
        return connection


def _read_reply(connection: socket.socket, *, tolerate_errors: bool) -> str:
    reply = bytearray()
    try:
        while len(reply) < _MAX_REPLY_BYTES:
            data = connection.recv(_MAX_REPLY_BYTES)
            if not data:
                break
            reply += data
            if b"\0" in data:
                break
    except OSError:
        if not tolerate_errors:
            raise
    return reply.split(b"\0", 1)[0].decode("utf-8", errors="replace").strip()


def _parse(reply: str, scanned_bytes: int) -> ScanResult:
    if reply == "stream: OK":
        return ScanResult(ScanVerdict.CLEAN, scanned_bytes=scanned_bytes)
    if reply.startswith("stream: ") and reply.endswith(" FOUND"):
        signature = reply[len("stream: ") : -len(" FOUND")].strip()
        if signature.startswith(_LIMIT_SIGNATURE_PREFIX):
            raise ScanLimitExceeded(signature)
        return ScanResult(ScanVerdict.INFECTED, signature=signature, scanned_bytes=scanned_bytes)
    if "size limit exceeded" in reply:
        raise ScanLimitExceeded(f"clamd StreamMaxLength ({reply})")
    if reply.endswith("ERROR"):
        raise ScannerUnavailable(f"clamd error: {reply[:200]}")
    raise ScannerUnavailable(f"unexpected clamd reply: {reply[:200]!r}")


if TYPE_CHECKING:
    from reckai.application.ports.scanner import VirusScanner

    _check: VirusScanner = ClamdScanner(host="x")
