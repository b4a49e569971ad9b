"""In-memory mailer for tests: keeps every message, builds it like the real ones (so invalid
addresses and header injection fail the same way)."""

from __future__ import annotations

from email.message import EmailMessage

from reckai.adapters.mail.message import build_message
from reckai.application.ports.mail import Mailer, OutgoingMail


class MemoryMailer:
    def __init__(self, sender: str = "no-reply@reckai.local") -> None:
        self._sender = sender
        self.sent: list[OutgoingMail] = []
        self.messages: list[EmailMessage] = []

    def send(self, mail: OutgoingMail) -> None:
        message = build_message(mail, self._sender)
        self.sent.append(mail)
        self.messages.append(message)


_check: type[Mailer] = MemoryMailer
