"""TOTP (RFC 6238) with pyotp: 30-second steps, 6 digits, SHA-1 (what authenticator apps support),
a 160-bit secret, and a QR code of the otpauth:// URI as SVG (segno).

`verify` accepts ±1 step for clock drift and returns the matched step; only steps later than the
last used one are tried (domain rule `accept_totp_step`), so a code is never accepted twice.
"""

from __future__ import annotations

import datetime as dt
import hmac
import io

import pyotp
import segno

from reckai.application.ports.security import Totp, TotpEnrollment
from reckai.domain.identity.mfa_rules import accept_totp_step

STEP_SECONDS = 30
DIGITS = 6
DRIFT_STEPS = 1
SECRET_BYTES = 20  # 160 bits, RFC 4226's recommendation


class PyOtpTotp:
    def new_enrollment(self, *, account_name: str, issuer: str) -> TotpEnrollment:
        secret = pyotp.random_base32(length=SECRET_BYTES * 8 // 5)
        uri = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).provisioning_uri(
            name=account_name, issuer_name=issuer
        )
        buffer = io.BytesIO()
        segno.make(uri, error="m").save(buffer, kind="svg", scale=4, xmldecl=False)
        return TotpEnrollment(secret=secret, provisioning_uri=uri, qr_svg=buffer.getvalue().decode("utf-8"))

    def verify(
        self, secret: str, code: str, *, last_used_step: int | None, at: dt.datetime | None = None
    ) -> int | None:
        code = code.strip().replace(" ", "")
        if len(code) != DIGITS or not code.isdigit():
            return None
        moment = at or dt.datetime.now(dt.UTC)
        current = int(moment.timestamp()) // STEP_SECONDS
        totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
        matched: int | None = None
        for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
            if not accept_totp_step(step, last_used_step):
                continue
            # The latest matching step wins: a code that happens to fit two steps must not be
            # usable a second time at the later one.
            if hmac.compare_digest(totp.generate_otp(step), code):
                matched = step
        return matched


_check: type[Totp] = PyOtpTotp
