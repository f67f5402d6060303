"""Vendor profiles: the version, auth scheme and quirks a simulated SIS shows.

No recorded Genesis, Focus or ProgressBook payloads are public; these profiles carry the
quirks documented for real providers (Ed-Fi's OneRoster, ClassLink, Infinite Campus) so
that every trap is exercised by some vendor: see ../shared/reference/oneroster.md §5.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class VendorProfile:
    name: str
    version: str  # "1.1" | "1.2"
    auth: str  # "oauth2" | "oauth1"
    max_page_size: int  # larger limits are clamped silently
    default_page_size: int = 100
    count_header: str | None = "X-Total-Count"
    link_headers: bool = True
    string_booleans: bool = False
    datetime_dates: bool = False  # dates rendered as midnight-local date-times in UTC
    lowercase_session_envelope: bool = False
    honours_sort: bool = True
    natural_order_sorted: bool = True  # unsorted responses come in sourcedId order
    token_ttl_s: int = 3600
    html_throttle: bool = False  # 429 bodies are HTML pages, not imsx JSON
    token_query: str = ""  # Infinite Campus puts ?appName= on its token URL
    # Whether the gradebook takes DELETE; otherwise a record is removed by a PUT with
    # status tobedeleted.
    gradebook_deletes: bool = True
    # A broken provider: every offset answered with the first page (hostile-server tests).
    honours_offset: bool = True
    # Nights after the rollover that last year's records are still served, as tobedeleted
    # (0: dropped at once).
    keeps_tobedeleted_days: int = 0

    def with_(self, **changes: object) -> VendorProfile:
        return replace(self, **changes)


VENDORS: dict[str, VendorProfile] = {
    # Ed-Fi provider behaviour: no count or Link headers, silent clamp at 500, string booleans.
    "genesis": VendorProfile(
        "genesis",
        "1.1",
        "oauth2",
        max_page_size=500,
        count_header=None,
        link_headers=False,
        string_booleans=True,
    ),
    # Ed-Fi commit 5dade3f: lower-case academicSessions envelope, dates as UTC date-times.
    "focus": VendorProfile(
        "focus",
        "1.1",
        "oauth2",
        max_page_size=1000,
        datetime_dates=True,
        lowercase_session_envelope=True,
        html_throttle=True,
        gradebook_deletes=False,
    ),
    # ClassLink-style: OAuth 1.0a, x-count header, string booleans, sort ignored.
    "progressbook": VendorProfile(
        "progressbook",
        "1.1",
        "oauth1",
        max_page_size=2000,
        count_header="x-count",
        string_booleans=True,
        honours_sort=False,
        natural_order_sorted=False,
        gradebook_deletes=False,
        keeps_tobedeleted_days=14,
    ),
    # Infinite Campus: OneRoster 1.2, limit up to 50K, appName on the token URL.
    "infinite_campus": VendorProfile(
        "infinite_campus",
        "1.2",
        "oauth2",
        max_page_size=50_000,
        string_booleans=True,
        token_query="?appName=demo",
        keeps_tobedeleted_days=30,
    ),
    "generic": VendorProfile("generic", "1.1", "oauth2", max_page_size=10_000),
}
