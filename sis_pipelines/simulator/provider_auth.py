"""How a simulated provider checks credentials: OAuth 2.0 client credentials (tokens that
expire) or OAuth 1.0a HMAC-SHA256 signatures (with timestamps and nonces), per vendor."""

from __future__ import annotations

import base64
import hmac
import secrets
import threading
import time
from urllib.parse import unquote

import orjson
from authlib.oauth1.rfc5849.signature import generate_signature_base_string
from authlib.oauth1.rfc5849.wrapper import OAuth1Request

from ..oneroster.auth import hmac_sha256_signature
from .vendors import VendorProfile

OAUTH1_SKEW_S = 600


class ProviderAuth:
    """One client's credentials at a provider, and the tokens and nonces it has seen."""

    def __init__(self, profile: VendorProfile, client_id: str, client_secret: str):
        self.profile = profile
        self.client_id = client_id
        self.client_secret = client_secret
        self._tokens: dict[str, float] = {}
        self.issued: list[str] = []  # every token handed out (a test looks for them)
        self._nonces: set[str] = set()
        self._lock = threading.Lock()

    def expire_tokens(self) -> None:
        with self._lock:
            self._tokens.clear()

    def issue_token(self, authorization: str, form: dict[str, list[str]]) -> tuple[int, bytes]:
        client_id = secret = None
        if authorization.lower().startswith("basic "):
            try:
                client_id, _, secret = base64.b64decode(authorization[6:]).decode().partition(":")
                client_id, secret = unquote(client_id), unquote(secret)
            except (ValueError, UnicodeDecodeError):
                pass
        client_id = client_id or (form.get("client_id") or [None])[0]
        secret = secret or (form.get("client_secret") or [None])[0]
        if (form.get("grant_type") or [None])[0] != "client_credentials":
            return 400, orjson.dumps({"error": "unsupported_grant_type"})
        if client_id != self.client_id or not hmac.compare_digest(secret or "", self.client_secret):
            return 401, orjson.dumps({"error": "invalid_client"})
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = time.time() + self.profile.token_ttl_s
            self.issued.append(token)
        scope = (form.get("scope") or [""])[0]
        return 200, orjson.dumps(
            {
                "access_token": token,
                "token_type": "bearer",
                "expires_in": self.profile.token_ttl_s,
                "scope": scope,
            }
        )

    def authorised(self, method: str, url: str, headers: dict[str, str]) -> str | None:
        """None when the request may pass, else the reason it may not."""
        authorization = headers.get("authorization", "")
        if self.profile.auth == "oauth1":
            return self._check_oauth1(method, url, headers)
        if not authorization.lower().startswith("bearer "):
            return "missing bearer token"
        with self._lock:
            expires = self._tokens.get(authorization[7:].strip())
        if expires is None or expires < time.time():
            return "invalid or expired token"
        return None

    def _check_oauth1(self, method: str, url: str, headers: dict[str, str]) -> str | None:
        if not headers.get("authorization", "").startswith("OAuth "):
            return "missing OAuth 1.0a Authorization header"
        request = OAuth1Request(
            method,
            url,
            None,
            {"Authorization": headers.get("authorization", ""), "Host": headers.get("host", "")},
        )
        if request.client_id != self.client_id:
            return "unknown consumer key"
        if request.signature_method != "HMAC-SHA256":
            return f"signature method {request.signature_method} not accepted"
        try:
            skew = abs(time.time() - int(request.timestamp))
        except (TypeError, ValueError):
            return "bad timestamp"
        if skew > OAUTH1_SKEW_S:
            return "timestamp out of range"
        expected = hmac_sha256_signature(
            generate_signature_base_string(request), self.client_secret
        )
        if not hmac.compare_digest(expected, request.signature or ""):
            return "signature mismatch"
        with self._lock:
            if request.oauth_params.get("oauth_nonce") in self._nonces:
                return "nonce reused"
            self._nonces.add(request.oauth_params.get("oauth_nonce"))
        return None
