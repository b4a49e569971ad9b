"""Head checkpoints in a local append-only file (embedded mode; docs/audit.md, "Anchors").

One checkpoint per line, JSON, appended with O_APPEND and fsync; the latest is the last line
(read backwards from the end, so the file's length does not matter). Weaker than S3 Object Lock:
anyone who can write the file (the application's own user) can rewrite it. Harden it on Linux with
`chattr +a` (root: append only, even for its owner) and ship the `audit.checkpoint` log lines,
which carry the same signed document, off the machine.
"""

from __future__ import annotations

import os
from pathlib import Path

from reckai.application.ports.audit import AuditAnchorFailed, AuditAnchorStore
from reckai.domain.audit.anchors import HeadCheckpoint, InvalidCheckpointDocument

_TAIL_CHUNK = 64 * 1024


class AppendOnlyFileAnchorStore:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @property
    def description(self) -> str:
        return f"append-only file {self.path} (weaker than S3 Object Lock: the application's user can rewrite it)"

    def write(self, checkpoint: HeadCheckpoint) -> str:
        line = (checkpoint.to_json() + "\n").encode("ascii")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(descriptor, line)
                os.fsync(descriptor)
                size = os.fstat(descriptor).st_size
            finally:
                os.close(descriptor)
        except OSError as exc:
            raise AuditAnchorFailed(f"cannot append to {self.path} ({type(exc).__name__})") from exc
        return f"{self.path}@{size - len(line)}"

    def latest(self) -> HeadCheckpoint | None:
        try:
            with self.path.open("rb") as handle:
                handle.seek(0, os.SEEK_END)
                end = handle.tell()
                tail = b""
                position = end
                while position > 0:
                    step = min(_TAIL_CHUNK, position)
                    position -= step
                    handle.seek(position)
                    tail = handle.read(step) + tail
                    lines = tail.rstrip(b"\n").split(b"\n")
                    if len(lines) > 1 or position == 0:
                        last = lines[-1]
                        break
                else:
                    return None
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise AuditAnchorFailed(f"cannot read {self.path} ({type(exc).__name__})") from exc
        if not last.strip():
            return None
        try:
            return HeadCheckpoint.from_json(last)
        except InvalidCheckpointDocument as exc:
            raise AuditAnchorFailed(f"the last line of {self.path} is not a checkpoint: {exc}") from exc


_check: type[AuditAnchorStore] = AppendOnlyFileAnchorStore
