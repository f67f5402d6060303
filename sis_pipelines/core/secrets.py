"""Every secret this process holds, and the one place text is cleaned of them.

A secret enters the process in a few places (``tenants.read_secret`` for the variables the
tenants file names, a token a SIS issues us, an SFTP password); each is remembered here as it
enters. Text that may carry a server's words (an error body that echoes our Authorization
header, an import's messages) passes :func:`redact` before it becomes an exception's message,
a log line or metadata: every remembered secret, in every form we sent it (plain, URL-quoted,
inside a Basic header), and any ``Bearer``/``Basic`` credential, is replaced, and the text is
bounded in length.
"""

from __future__ import annotations

import base64
import logging
import re
import threading
from urllib.parse import quote

# A server's message is a line or two; a body echoed whole is cut here.
MAX_TEXT = 8_000
REDACTED = "[redacted]"
# Shorter values are not secrets worth the name, and replacing them would mangle words.
MIN_LENGTH = 8

_known: set[str] = set()
_pattern: re.Pattern[str] | None = None
_stale = False
_lock = threading.Lock()

# Credentials in the shapes HTTP carries them, whoever's they are.
_SCHEMES = re.compile(
    r"\b((?i:bearer))(\s+|%20|\+)[A-Za-z0-9._~+/=%-]{6,}"
    # A Basic credential is base64: a digit or one of +/= in it tells it from a word.
    r"|\b(Basic)(\s+|%20|\+)(?=[A-Za-z]*[0-9+/=])[A-Za-z0-9+/]{8,}={0,2}"
)
_FIELDS = re.compile(
    r"(?i)\b(access_token|refresh_token|client_secret|password|x-vendor-authorization)"
    r"""(["']?\s*[:=]\s*["']?)[^"'\s,&;}]+"""
)


def remember(secret: str | None) -> None:
    """A value to remove from every text this process emits, in each form it is sent."""
    if not secret or len(secret) < MIN_LENGTH:
        return
    forms = {secret, quote(secret, safe=""), quote(secret)}
    global _stale
    with _lock:
        if forms <= _known:
            return
        _known.update(forms)
        _stale = True  # compiled when text is next cleaned (a thousand tenants, once)


def _secrets() -> re.Pattern[str] | None:
    global _pattern, _stale
    with _lock:
        if _stale:
            alternatives = sorted(_known, key=len, reverse=True)
            _pattern = re.compile("|".join(re.escape(a) for a in alternatives))
            _stale = False
        return _pattern


def remember_basic(user: str, password: str) -> None:
    """A Basic credential: its base64 form is what a server would echo."""
    remember(password)
    remember(base64.b64encode(f"{user}:{password}".encode()).decode())


def redact(text: str, limit: int = MAX_TEXT) -> str:
    """``text`` without any secret this process holds or any HTTP credential, at most
    ``limit`` characters."""
    more = len(text) - limit
    # Cut with room to spare first, so a secret cut in two is still recognised whole.
    text = text[: limit + 1024]
    pattern = _secrets()
    if pattern is not None:
        text = pattern.sub(REDACTED, text)
    text = _FIELDS.sub(rf"\1\2{REDACTED}", _SCHEMES.sub(_scheme, text))
    return f"{text[:limit]}… ({more:,} more characters)" if more > 0 else text


def _scheme(match: re.Match[str]) -> str:
    scheme, space = (match.group(1), match.group(2)) if match.group(1) else match.group(3, 4)
    return f"{scheme}{space}{REDACTED}"


def _install_log_redaction() -> None:
    previous = logging.getLogRecordFactory()

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if str(record.name).startswith("sis_pipelines"):
            record.msg, record.args = redact(record.getMessage()), None
        return record

    logging.setLogRecordFactory(factory)


_install_log_redaction()
