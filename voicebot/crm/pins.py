"""PINs at rest: salted PBKDF2 hashes, compared in constant time.

Why a module: the repository writes a PIN's hash (``add_customer``, the importer through it) and verification
compares a spoken PIN with it; neither needs the other's code, and no PIN is ever stored or compared in clear.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from voicebot.crm.spoken import digits_in

_PIN_ITERATIONS = 10_000


def hash_pin(pin: str, salt: bytes | None = None) -> str:
    """``pbkdf2_sha256$iterations$salt$hash`` for a PIN (digits only are kept): what ``add_customer`` stores."""
    salt = salt if salt is not None else os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", digits_in(pin).encode(), salt, _PIN_ITERATIONS)
    return f"pbkdf2_sha256${_PIN_ITERATIONS}${salt.hex()}${digest.hex()}"


def pin_matches(pin_digits: str, stored: str) -> bool:
    """Whether ``pin_digits`` is the PIN ``hash_pin`` stored (compared in constant time; verification asks)."""
    try:
        scheme, iterations, salt, expected = stored.split("$")
    except ValueError:
        return False
    if scheme != "pbkdf2_sha256":
        return False
    digest = hashlib.pbkdf2_hmac("sha256", pin_digits.encode(), bytes.fromhex(salt), int(iterations))
    return hmac.compare_digest(digest.hex(), expected)
