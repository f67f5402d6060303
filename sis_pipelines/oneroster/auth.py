"""OneRoster authentication as httpx auth flows, built on authlib.

- OAuth 1.0a, HMAC-SHA256, two-legged: query parameters are part of the signed base string.
- OAuth 2.0 client credentials: one token reused until it expires, fetched again on expiry
  or when the provider answers 401.
- A static bearer token.

Secrets live only in these objects and in the Authorization header; they never reach
messages, logs or exceptions.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time
from collections.abc import Generator
from urllib.parse import quote, urlsplit

import httpx
import orjson
from authlib.oauth1.rfc5849.client_auth import ClientAuth
from authlib.oauth1.rfc5849.signature import generate_signature_base_string
from authlib.oauth1.rfc5849.util import escape
from authlib.oauth2.rfc6749 import OAuth2Token

from ..core.errors import retryable_status
from ..core.secrets import remember, remember_basic
from .errors import OneRosterError, error_message

SCOPE_PREFIX = {
    "1.1": "https://purl.imsglobal.org/spec/or/v1p1/scope/",
    "1.2": "https://purl.imsglobal.org/spec/or/v1p2/scope/",
}
ROSTER_SCOPE = "roster.readonly"
DEMOGRAPHICS_SCOPE = "roster-demographics.readonly"


def default_scope(version: str, demographics: bool = False) -> str:
    """Rostering read scopes of a OneRoster version, space-separated: demographics only for a
    tenant that asks for them (data minimisation)."""
    scopes = (ROSTER_SCOPE, DEMOGRAPHICS_SCOPE) if demographics else (ROSTER_SCOPE,)
    return " ".join(SCOPE_PREFIX[version] + s for s in scopes)


def hmac_sha256_signature(base_string: str, client_secret: str, token_secret: str = "") -> str:
    key = f"{escape(client_secret or '')}&{escape(token_secret or '')}"
    digest = hmac.new(key.encode(), base_string.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def _sign_hmac_sha256(client: ClientAuth, request: object) -> str:
    return hmac_sha256_signature(
        generate_signature_base_string(request), client.client_secret, client.token_secret
    )


class _ClientAuthSha256(ClientAuth):
    # A subclass, so authlib's global table of signature methods stays untouched.
    SIGNATURE_METHODS = {**ClientAuth.SIGNATURE_METHODS, "HMAC-SHA256": _sign_hmac_sha256}


class OAuth1HmacSha256(httpx.Auth):
    """Two-legged OAuth 1.0a with HMAC-SHA256, signature in the Authorization header."""

    def __init__(self, client_id: str, client_secret: str):
        self._signer = _ClientAuthSha256(client_id, client_secret, signature_method="HMAC-SHA256")

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        body = request.content or None
        _, headers, _ = self._signer.sign(
            request.method, str(request.url), dict(request.headers), body
        )
        request.headers["Authorization"] = headers["Authorization"]
        yield request

    def __repr__(self) -> str:
        return "OAuth1HmacSha256(…)"


class BearerToken(httpx.Auth):
    def __init__(self, token: str):
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request

    def __repr__(self) -> str:
        return "BearerToken(…)"


class ClientCredentials(httpx.Auth):
    """OAuth 2.0 client credentials grant with a shared, thread-safe token cache."""

    # Only the token endpoint's answers are read here (``_store``): a rostering answer is
    # read by the client, within its size and time bounds, not whole by httpx first.
    requires_response_body = False

    def __init__(
        self,
        tenant: str,
        token_url: str,
        client_id: str,
        client_secret: str,
        scope: str | None,
        leeway_s: int = 60,
    ):
        self._tenant = tenant
        self._token_url = token_url
        self._basic = base64.b64encode(
            f"{quote(client_id, safe='')}:{quote(client_secret, safe='')}".encode()
        ).decode()
        remember_basic(quote(client_id, safe=""), quote(client_secret, safe=""))
        self._scope = scope
        self._leeway = leeway_s
        self._token: OAuth2Token | None = None
        self._lock = threading.Lock()
        self.tokens_fetched = 0

    def __repr__(self) -> str:
        return f"ClientCredentials(token_url={self._token_url!r})"

    def _token_request(self) -> httpx.Request:
        data = {"grant_type": "client_credentials"}
        if self._scope:
            data["scope"] = self._scope
        return httpx.Request(
            "POST",
            self._token_url,
            data=data,
            headers={"Authorization": f"Basic {self._basic}", "Accept": "application/json"},
        )

    def _store(self, response: httpx.Response) -> str:
        endpoint = urlsplit(self._token_url).path
        response.read()
        if retryable_status(response.status_code):
            raise OneRosterError(
                self._tenant,
                endpoint,
                error_message(response.content, response.headers.get("content-type", "")),
                response.status_code,
            )
        if response.status_code != 200:
            raise OneRosterError(
                self._tenant,
                endpoint,
                "token request refused: "
                + error_message(response.content, response.headers.get("content-type", "")),
                response.status_code,
            )
        try:
            payload = orjson.loads(response.content)
            access = payload["access_token"]
            remember(str(access))  # issued to us: as secret as the client secret
            remember(payload.get("refresh_token"))
        except (orjson.JSONDecodeError, KeyError, TypeError):
            raise OneRosterError(
                self._tenant,
                endpoint,
                "token response is not a JSON token",
                response.status_code,
                retryable=True,
            ) from None
        payload.setdefault("expires_at", int(time.time()) + int(payload.get("expires_in") or 3600))
        with self._lock:
            self._token = OAuth2Token(payload)
            self.tokens_fetched += 1
        return access

    def _current(self) -> str | None:
        with self._lock:
            token = self._token
        if token is None or token.is_expired(leeway=self._leeway):
            return None
        return token["access_token"]

    def invalidate(self) -> None:
        with self._lock:
            self._token = None

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        access = self._current()
        if access is None:
            access = self._store((yield self._token_request()))
        request.headers["Authorization"] = f"Bearer {access}"
        response = yield request
        if response.status_code == 401:
            # Tokens can be revoked or expire early on the provider's side: fetch once more.
            self.invalidate()
            access = self._store((yield self._token_request()))
            request.headers["Authorization"] = f"Bearer {access}"
            yield request
