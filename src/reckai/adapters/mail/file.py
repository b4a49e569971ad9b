"""File mailer for embedded mode: each message becomes an .eml file in the outbox directory
(open it with any mail client). Files are written atomically and readable by the owner only:
they contain single-use links."""

from __future__ import annotations

import datetime as dt
import logging
import os
import tempfile
import uuid
from pathlib import Path

from reckai.adapters.mail.message import build_message
from reckai.application.ports.mail import Mailer, MailerUnavailable, OutgoingMail

logger = logging.getLogger(__name__)


class FileMailer:
    def __init__(self, outbox_dir: Path, sender: str) -> None:
        self._outbox = Path(outbox_dir)
        self._sender = sender

    def send(self, mail: OutgoingMail) -> None:
        message = build_message(mail, self._sender)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        target = self._outbox / f"{stamp}-{uuid.uuid4().hex[:12]}.eml"
        try:
            self._outbox.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, temp = tempfile.mkstemp(dir=self._outbox, prefix=".tmp-", suffix=".eml")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(message.as_bytes())
                os.replace(temp, target)
            except BaseException:
                Path(temp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise MailerUnavailable(
                f"cannot write to the mail outbox {self._outbox} ({type(exc).__name__})"
            ) from exc
        # The subject and the file name only: the body may hold a single-use link.
        logger.info("mail written to outbox file %s (subject %r)", target.name, mail.subject)


_check: type[Mailer] = FileMailer
