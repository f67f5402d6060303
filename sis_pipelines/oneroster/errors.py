"""Errors that name the tenant, the endpoint and the SIS's own message."""

from __future__ import annotations

import re
from typing import Any

import orjson

from ..core.errors import SourceError
from ..core.secrets import redact

_TAGS = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")
MAX_MESSAGE = 300


class OneRosterError(SourceError):
    """A OneRoster provider refused or failed a request: retryable as its HTTP status says
    (``core.errors.retryable_status``), or as the raiser says when there is no status to go by."""

    def __init__(
        self,
        tenant: str,
        endpoint: str,
        message: str,
        status: int | None = None,
        retryable: bool | None = None,
    ):
        self.tenant = tenant
        self.endpoint = endpoint
        self.sis_message = redact(message)
        where = f"tenant {tenant!r}, endpoint {endpoint}"
        code = f"HTTP {status}: " if status else ""
        super().__init__(f"{where}: {code}{message}", status=status, retryable=retryable)


def _lower_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k).lower(): _lower_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_lower_keys(v) for v in value]
    return value


def imsx_message(body: Any) -> str | None:
    """The description of an imsx_StatusInfo envelope, wrapped or not, any key case.

    Returns None when the body is not a failure envelope. Only the top-level keys are
    looked at: a page of records is never walked.
    """
    if not isinstance(body, dict):
        return None
    top = {str(k).lower(): k for k in body}
    if "imsx_statusinfo" in top:
        info = body[top["imsx_statusinfo"]]
        if isinstance(info, list) and info:
            info = info[0]
    elif "imsx_codemajor" in top:
        info = body
    else:
        return None
    if not isinstance(info, dict):
        return None
    info = _lower_keys(info)
    major = info.get("imsx_codemajor")
    if major is None or str(major).lower() == "success":
        return None
    minor = info.get("imsx_codeminor")
    if isinstance(minor, dict):
        fields = minor.get("imsx_codeminorfield") or []
        if isinstance(fields, dict):
            fields = [fields]
        minor = ", ".join(
            str(f.get("imsx_codeminorfieldvalue")) for f in fields if isinstance(f, dict)
        )
    parts = [
        str(info.get("imsx_description") or "").strip(),
        f"({major}{'/' + str(minor) if minor else ''})",
    ]
    return " ".join(p for p in parts if p)


def error_message(content: bytes, content_type: str = "") -> str:
    """The provider's own words from an error body: imsx, {"error": …}, HTML or text."""
    text = content.decode("utf-8", errors="replace")
    if "json" in content_type or text.lstrip().startswith(("{", "[")):
        try:
            body = orjson.loads(content)
        except orjson.JSONDecodeError:
            body = None
        if body is not None:
            message = imsx_message(body)
            if message:
                return message
            if isinstance(body, dict):
                for key in ("error_description", "error", "message", "detail"):
                    if body.get(key):
                        return _short(str(body[key]))
            return _short(text)
    if "html" in content_type or "<html" in text[:200].lower():
        title = re.search(r"<title[^>]*>(.*?)</title>", text, re.I | re.S)
        text = title.group(1) if title else _TAGS.sub(" ", text)
    return _short(text) or "(empty response body)"


def _short(text: str) -> str:
    text = _SPACE.sub(" ", text).strip()
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"
