"""SMTP mailer (smtplib). One connection per message: invitations and resets are rare, and a
fresh connection never inherits a half-broken session. STARTTLS, when configured, is required:
a server that does not offer it is an error, never a silent fallback to plain text."""

from __future__ import annotations

import smtplib
import ssl

from reckai.adapters.mail.message import build_message
from reckai.application.ports.mail import Mailer, MailerUnavailable, MailRejected, OutgoingMail


class SmtpMailer:
    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        *,
        starttls: bool = False,
        username: str | None = None,
        password: str | None = None,
        timeout_seconds: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._host = host
        self._port = port
        self._sender = sender
        self._starttls = starttls
        self._username = username
        self._password = password
        self._timeout = timeout_seconds
        self._ssl_context = ssl_context

    def send(self, mail: OutgoingMail) -> None:
        message = build_message(mail, self._sender)
        try:
            with smtplib.SMTP(self._host, self._port, timeout=self._timeout) as smtp:
                smtp.ehlo()
                if self._starttls:
                    if not smtp.has_extn("starttls"):
                        raise MailerUnavailable("the SMTP server does not offer STARTTLS, which is required")
                    smtp.starttls(context=self._ssl_context or ssl.create_default_context())
                    smtp.ehlo()
                if self._username:
                    smtp.login(self._username, self._password or "")
                smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            if codes and all(400 <= code < 500 for code in codes):
                raise MailerUnavailable(f"the SMTP server deferred the recipient ({codes[0]})") from exc
            raise MailRejected("the SMTP server refused the recipient") from exc
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
            if 500 <= exc.smtp_code < 600:
                raise MailRejected(f"the SMTP server rejected the message ({exc.smtp_code})") from exc
            raise MailerUnavailable(f"the SMTP server failed temporarily ({exc.smtp_code})") from exc
        except smtplib.SMTPAuthenticationError as exc:
            raise MailerUnavailable("SMTP authentication failed; check SMTP_USERNAME/SMTP_PASSWORD") from exc
        except (smtplib.SMTPException, ssl.SSLError, OSError) as exc:
            raise MailerUnavailable(
                f"the SMTP server at {self._host}:{self._port} is unreachable ({type(exc).__name__})"
            ) from exc


_check: type[Mailer] = SmtpMailer
