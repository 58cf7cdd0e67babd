"""TOTP second factor (RFC 6238, pyotp): secrets, the otpauth URI an authenticator app reads,
and checking a code once.

A code is accepted for the current time step or the one before or after (a phone's clock may be
some seconds off), and only for a step later than the last one accepted for that user, so a code
seen over a shoulder or left in a log is no good afterwards.
"""

from __future__ import annotations

import time

import pyotp

ISSUER = "Conduit"
STEP = 30  # seconds: what every authenticator app uses by default
DIGITS = 6


def new_secret() -> str:
    return pyotp.random_base32()  # 32 base32 characters: 160 bits, as RFC 4226 recommends


def provisioning_uri(secret: str, name: str, issuer: str = ISSUER) -> str:
    """The ``otpauth://totp/...`` URI an authenticator app imports (or shows as a QR code)."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP).provisioning_uri(
        name=name, issuer_name=issuer)


def matching_step(secret: str, code: str, after: int | None, at: float | None = None) -> int | None:
    """The time step ``code`` is right for (within one step of now), if later than ``after``;
    else None."""
    code = code.strip().replace(" ", "")
    if len(code) != DIGITS or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP)
    clock = time.time() if at is None else at
    current = int(clock // STEP)
    for step in (current - 1, current, current + 1):
        if (after is None or step > after) and totp.verify(code, for_time=step * STEP,
                                                           valid_window=0):
            return step
    return None
