"""Building a MIME message from an OutgoingMail, shared by the SMTP and file mailers."""

from __future__ import annotations

import email.policy
import email.utils
from email.message import EmailMessage

from reckai.application.ports.mail import InvalidMail, OutgoingMail


def _check_address(address: str, role: str) -> None:
    local, at, domain = address.partition("@")
    if (
        not at
        or not local
        or "." not in domain
        or any(ch.isspace() or ch in ',;<>"()' for ch in address)
        or len(address) > 254
    ):
        raise InvalidMail(f"{role} address is not a single plain e-mail address")


def build_message(mail: OutgoingMail, sender: str) -> EmailMessage:
    _check_address(sender, "sender")
    _check_address(mail.to, "recipient")
    message = EmailMessage(policy=email.policy.SMTP)
    try:
        message["From"] = sender
        message["To"] = mail.to
        message["Subject"] = mail.subject
    except ValueError as exc:  # a header with CR/LF: header injection
        raise InvalidMail("a header contains a line break") from exc
    message["Date"] = email.utils.formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = email.utils.make_msgid(domain=sender.partition("@")[2])
    message.set_content(mail.text_body)
    if mail.html_body is not None:
        message.add_alternative(mail.html_body, subtype="html")
    return message
