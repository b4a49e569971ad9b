"""SMTP mailer against a real local SMTP server (aiosmtpd), and the file mailer's outbox."""

from __future__ import annotations

import email
import email.policy
import os
import socket
import stat
from pathlib import Path

import pytest

from reckai.adapters.mail.file import FileMailer
from reckai.adapters.mail.smtp import SmtpMailer
from reckai.adapters.memory.mail import MemoryMailer
from reckai.application.ports.mail import InvalidMail, Mailer, MailerUnavailable, MailRejected, OutgoingMail
from tests.fixtures.smtp import SmtpServer

pytestmark = pytest.mark.integration

SENDER = "no-reply@reckai.test"
INVITE = OutgoingMail(
    to="ada@bank.example",
    subject="You are invited to ReckAI",
    text_body="Open https://reckai.test/accept?token=abc123 within 72 hours.",
    html_body="<p>Open <a href='https://reckai.test/accept?token=abc123'>this link</a>.</p>",
)


def test_smtp_delivers_text_and_html(smtp_server: SmtpServer) -> None:
    SmtpMailer(smtp_server.host, smtp_server.port, SENDER).send(INVITE)
    (message,) = smtp_server.messages
    assert smtp_server.envelopes[0].mail_from == SENDER
    assert smtp_server.envelopes[0].rcpt_tos == ("ada@bank.example",)
    assert message["Subject"] == INVITE.subject and message["To"] == INVITE.to and message["From"] == SENDER
    assert message["Message-ID"] and message["Date"]
    assert "token=abc123" in message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "<a href" in message.get_body(("html",)).get_content()  # type: ignore[union-attr]


def test_smtp_starttls_with_a_verified_certificate(smtp_tls_server: SmtpServer) -> None:
    mailer = SmtpMailer(
        "localhost", smtp_tls_server.port, SENDER, starttls=True, ssl_context=smtp_tls_server.client_context
    )
    mailer.send(INVITE)
    assert len(smtp_tls_server.messages) == 1


def test_smtp_starttls_refuses_an_untrusted_certificate(smtp_tls_server: SmtpServer) -> None:
    mailer = SmtpMailer("localhost", smtp_tls_server.port, SENDER, starttls=True)  # system CAs only
    with pytest.raises(MailerUnavailable):
        mailer.send(INVITE)
    assert smtp_tls_server.messages == []


def test_starttls_required_but_not_offered_is_an_error_not_plain_text(smtp_server: SmtpServer) -> None:
    with pytest.raises(MailerUnavailable, match="does not offer STARTTLS"):
        SmtpMailer(smtp_server.host, smtp_server.port, SENDER, starttls=True).send(INVITE)
    assert smtp_server.messages == []


def test_refused_recipient_is_mail_rejected(smtp_server_factory) -> None:  # type: ignore[no-untyped-def]
    server = smtp_server_factory(refuse_recipients_matching="blocked")
    with pytest.raises(MailRejected):
        SmtpMailer(server.host, server.port, SENDER).send(OutgoingMail("blocked@bank.example", "s", "b"))
    temporary = smtp_server_factory(refuse_recipients_matching="later", refuse_code=451)
    with pytest.raises(MailerUnavailable, match="deferred"):  # 4xx: temporary, retry later
        SmtpMailer(temporary.host, temporary.port, SENDER).send(OutgoingMail("later@bank.example", "s", "b"))


def test_unreachable_server_is_mailer_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead_port = sock.getsockname()[1]
    with pytest.raises(MailerUnavailable) as caught:
        SmtpMailer("127.0.0.1", dead_port, SENDER, timeout_seconds=2).send(INVITE)
    assert isinstance(caught.value.__cause__, OSError)


@pytest.mark.parametrize(
    "mail",
    [
        OutgoingMail("ada@bank.example", "Hello\r\nBcc: victim@evil.example", "body"),  # header injection
        OutgoingMail("ada@bank.example, eve@evil.example", "s", "b"),  # two recipients smuggled
        OutgoingMail("not-an-address", "s", "b"),
        OutgoingMail("ada@bank.example\nBcc: x@evil.example", "s", "b"),
    ],
)
def test_invalid_mail_refused_by_every_mailer(
    mail: OutgoingMail, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    mailers: list[Mailer] = [
        SmtpMailer(smtp_server.host, smtp_server.port, SENDER),
        FileMailer(tmp_path / "outbox", SENDER),
        MemoryMailer(SENDER),
    ]
    for mailer in mailers:
        with pytest.raises(InvalidMail):
            mailer.send(mail)
    assert smtp_server.messages == []
    assert not (tmp_path / "outbox").exists() or list((tmp_path / "outbox").iterdir()) == []


def test_file_mailer_writes_a_private_eml(tmp_path: Path) -> None:
    outbox = tmp_path / "var" / "mail"
    mailer = FileMailer(outbox, SENDER)
    mailer.send(INVITE)
    mailer.send(OutgoingMail("bob@bank.example", "Reset your password", "token=xyz"))
    files = sorted(outbox.iterdir())
    assert [f.suffix for f in files] == [".eml", ".eml"]
    assert stat.S_IMODE(os.stat(files[0]).st_mode) == 0o600
    parsed = [email.message_from_bytes(f.read_bytes(), policy=email.policy.default) for f in files]
    assert {m["To"] for m in parsed} == {"ada@bank.example", "bob@bank.example"}
    assert any("token=abc123" in m.get_body(("plain",)).get_content() for m in parsed)  # type: ignore[union-attr]


def test_file_mailer_unwritable_outbox_is_mailer_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("x")
    with pytest.raises(MailerUnavailable, match="outbox"):
        FileMailer(blocker / "mail", SENDER).send(INVITE)


def test_memory_mailer_keeps_messages() -> None:
    mailer = MemoryMailer(SENDER)
    mailer.send(INVITE)
    assert mailer.sent == [INVITE] and mailer.messages[0]["To"] == INVITE.to
