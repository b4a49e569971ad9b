"""Mailer port: invitations, password resets and notifications.

Adapters: `adapters.mail.smtp` (production), `adapters.mail.file` (embedded mode: .eml files in
settings.mailer.outbox_dir), `adapters.memory.mail` (tests). Message bodies may carry single-use
links, which are secrets: no adapter logs a body.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class MailError(Exception):
    """Base of mailer errors."""


class InvalidMail(MailError):
    """The message cannot be sent as given (bad address, a header with a line break...)."""


class MailerUnavailable(MailError):
    """The mail server could not be reached or failed temporarily; retrying later may work."""


class MailRejected(MailError):
    """The server refused the message or its recipient permanently."""


@dataclass(frozen=True)
class OutgoingMail:
    to: str
    subject: str
    text_body: str
    html_body: str | None = None


class Mailer(Protocol):
    def send(self, mail: OutgoingMail) -> None:
        """Deliver (or hand to the relay / write to the outbox) one message from the configured
        sender. Raises InvalidMail, MailerUnavailable or MailRejected; nothing else escapes."""
        ...
