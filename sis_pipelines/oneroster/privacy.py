"""Data minimisation: drop or hash users' contact fields in the raw records, so that neither
snapshots nor quarantine files (which keep raw records) ever hold them."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

CONTACT_FIELDS = ("email", "sms", "phone")
RecordHook = Callable[[dict], None]


def contact_hook(mode: str, salt: str | None = None) -> RecordHook | None:
    if mode == "keep":
        return None
    if mode == "drop":

        def drop(record: dict) -> None:
            for name in CONTACT_FIELDS:
                record.pop(name, None)

        return drop
    if not salt:
        raise ValueError("hashing contact fields needs a salt")
    key = salt.encode()

    def hash_fields(record: dict) -> None:
        for name in CONTACT_FIELDS:
            value = record.get(name)
            if isinstance(value, str) and value:
                # Keyed (HMAC): equal values still match across nights, but cannot be guessed back.
                record[name] = (
                    "hmac-sha256:"
                    + hmac.new(key, value.strip().lower().encode(), hashlib.sha256).hexdigest()
                )

    return hash_fields
