"""The tenants file: one entry per school district, validated with pydantic.

Secrets never live here: the file names the environment variables that hold them.
"""

from __future__ import annotations

import difflib
import os
import typing
from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from .errors import ConfigurationError, MissingSecretError
from .secrets import remember

TENANT_ID_PATTERN = r"^[a-z][a-z0-9-]{0,62}$"
TenantId = Annotated[str, StringConstraints(pattern=TENANT_ID_PATTERN)]
Vendor = Literal["genesis", "focus", "progressbook", "infinite_campus", "generic"]
# The OneRoster version each vendor's SIS serves (reference/oneroster.md, vendor quirks).
VENDOR_VERSION = {
    "genesis": "1.1",
    "focus": "1.1",
    "progressbook": "1.1",
    "infinite_campus": "1.2",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Auth(_Strict):
    type: Literal["oauth1", "oauth2", "bearer"]
    token_url: str | None = None
    client_id_env: str | None = None
    client_secret_env: str | None = None
    token_env: str | None = None
    scope: str | None = None  # default: the rostering read scopes of the OneRoster version

    @model_validator(mode="after")
    def _needs(self) -> Auth:
        if self.type in ("oauth1", "oauth2") and not (
            self.client_id_env and self.client_secret_env
        ):
            raise ValueError(f"auth type {self.type} needs client_id_env and client_secret_env")
        if self.type == "oauth2" and not self.token_url:
            raise ValueError("auth type oauth2 needs token_url")
        if self.type == "bearer" and not self.token_env:
            raise ValueError("auth type bearer needs token_env")
        return self


class OneRoster(_Strict):
    version: Literal["1.1", "1.2"]
    source: Literal["rest", "csv", "simulator"]
    base_url: str | None = None
    auth: Auth | None = None
    page_size: int = Field(1000, ge=1, le=1_000_000)
    max_concurrency: int = Field(2, ge=1, le=32)
    sort: bool = True  # ask for sort=sourcedId (drift-safe paging when the SIS honours it)
    # How the large collections (courses, classes, enrollments) are read: "bulk" (one endpoint
    # each), "by_school" (/schools/{id}/…, a school at a time, for a SIS whose bulk endpoints
    # time out), or "auto" (bulk, and school by school when a bulk collection fails).
    service: Literal["bulk", "by_school", "auto"] = "bulk"
    timeout_s: float = Field(60.0, gt=0)
    # After the client's own retries: how often, and how far apart, a failed fetch step runs again.
    step_retries: int = Field(2, ge=0, le=10)
    step_retry_wait_s: float = Field(300.0, ge=0)
    # The client's own retries of one request: attempts, and the first backoff (doubling, jittered).
    retry_attempts: int = Field(6, ge=1, le=20)
    retry_backoff_s: float = Field(0.5, ge=0)
    path: str | None = (
        None  # csv: a folder of nightly bundles, one zip, or sftp://user@host[:port]/dir
    )
    sftp_password_env: str | None = None  # csv over SFTP: the password's variable, or
    sftp_key_env: str | None = None  # the variable holding a private key (PEM/OpenSSH text)
    sftp_host_key: str | None = (
        None  # the server's public host key ("ssh-ed25519 AAAA…"): required for SFTP
    )
    # csv: what a night's bundle may inflate to; a bigger one is refused before it is read.
    max_drop_bytes: int = Field(40_000_000_000, ge=1)
    # source: simulator
    students: int = Field(2000, ge=1)
    seed: int = 1
    # source: simulator: records the simulated SIS sends flawed, per collection, as a real SIS
    # sends some: users and enrollments with a role no OneRoster list has (quarantined),
    # classes with classType "Scheduled" (repaired): {users: 2, classes: 3}.
    simulator_flaws: dict[Literal["users", "enrollments", "classes"], int] = {}
    # source: simulator: scripted failures (see sis_pipelines.simulator.faults.Fault), e.g.
    # [{path: /users, status: 503, times: 2}] or [{path: /users, kind: drop}].
    simulator_faults: list[dict[str, Any]] = []

    @model_validator(mode="after")
    def _source_needs(self) -> OneRoster:
        if self.source == "rest":
            if not self.base_url or not self.base_url.startswith(("https://", "http://")):
                raise ValueError("source rest needs base_url (http or https)")
            if self.auth is None:
                raise ValueError("source rest needs auth")
        if self.source == "csv" and not self.path:
            raise ValueError("source csv needs path")
        if self.source == "csv" and (self.path or "").startswith("sftp://"):
            if not (self.sftp_password_env or self.sftp_key_env):
                raise ValueError("an sftp:// path needs sftp_password_env or sftp_key_env")
            if not self.sftp_host_key:
                raise ValueError(
                    "an sftp:// path needs sftp_host_key (the server's public key), so credentials go only to that server"
                )
        if self.version == "1.2" and self.auth is not None and self.auth.type == "oauth1":
            raise ValueError("OneRoster 1.2 allows OAuth 2.0 only, not oauth1")
        return self


class Among(_Strict):
    """Which values are in: every value when ``include`` is empty, less ``exclude``."""

    include: list[str] = []
    exclude: list[str] = []

    @property
    def everything(self) -> bool:
        return not self.include and not self.exclude


class Scope(_Strict):
    """What of the SIS goes to Canvas. Records out of scope are not provisioned; they stay in
    the night's snapshot and are listed, with their reason, beside the Canvas mapping."""

    # Orgs by sourcedId or identifier, each with the orgs below it (a district: its schools).
    orgs: Among = Among()
    session_types: Among = Among()  # academicSession types: term, semester, gradingPeriod …
    session_titles: Among = Among()  # academicSession titles, exactly
    # Only sessions that overlap this window (either end may be left open).
    sessions_from: date | None = None
    sessions_until: date | None = None
    class_types: Among = Among()  # homeroom, scheduled
    roles: Among = Among()  # user roles: student, teacher, guardian, aide …
    grades: Among = Among()  # CEDS grades of classes and students: KG, 01 … 12

    @property
    def everything(self) -> bool:
        return (
            all(
                getattr(self, f).everything
                for f in (
                    "orgs",
                    "session_types",
                    "session_titles",
                    "class_types",
                    "roles",
                    "grades",
                )
            )
            and self.sessions_from is None
            and self.sessions_until is None
        )


class Admins(_Strict):
    """Canvas account admins from OneRoster roles: which roles, at which account, which role."""

    roles: list[str] = Field(min_length=1)  # OneRoster roles, e.g. administrator
    # "school": the account of the user's school (its primary org, else its first); "district":
    # the root account.
    account: Literal["school", "district"] = "school"
    role: str = "AccountAdmin"  # AccountAdmin or a custom account role (case-sensitive)


class Login(_Strict):
    """A second login for each user, from another OneRoster field (logins.csv)."""

    login_id_field: Literal["username", "email", "identifier"]
    authentication_provider_id: str | None = None  # e.g. google for the email login


class Canvas(_Strict):
    base_url: str = ""
    account_id: int | str = 1
    token_env: str | None = None
    sis_id_prefix: str = Field("", pattern=r"^[A-Za-z0-9_.:-]*$")
    # "rest": the tenant's Canvas; "simulator": the bundled Canvas simulator (demo, tests).
    source: Literal["rest", "simulator"] = "rest"
    # Which OneRoster session types become Canvas terms; school years only when none finer exists.
    term_session_types: list[str] = ["term", "semester"]
    # "class": a Canvas course per OneRoster class; "course_term": per course and term, a section per class.
    course_mode: Literal["class", "course_term"] = "class"
    login_id_field: Literal["username", "email", "identifier"] = "username"
    observers: bool = False  # guardians as observers, through user_observers.csv
    # OneRoster role -> Canvas enrollment role (custom role names allowed); unmapped roles are not enrolled.
    role_map: dict[str, str] = {
        "student": "student",
        "teacher": "teacher",
        "aide": "ta",
        "proctor": "ta",
    }
    user_remove_status: Literal["deleted", "suspended"] = "suspended"
    # A course that leaves the SIS before its term ends: concluded (work kept), or deleted
    # when it never had an enrollment. After its term ended a course is always concluded.
    course_removal: Literal["conclude", "delete_if_unused"] = "conclude"
    # "course_teacher_term": the classes of one course, taught by the same teachers in one term
    # at one school, are one Canvas course: the others' sections cross-listed into the first's
    # (xlists.csv), and sent back when the rule no longer holds. Needs course_mode class.
    crosslist: Literal["none", "course_teacher_term"] = "none"
    # How users sign in (users.csv authentication_provider_id): the tenant's provider for
    # every login (saml, google, microsoft, openid_connect, cas, ldap, or a provider's id),
    # and per OneRoster role over it. None: Canvas's own logins.
    authentication_provider_id: str | None = None
    authentication_provider_by_role: dict[str, str] = {}
    # A OneRoster field sent as each user's integration_id (users.csv): e.g. the state id
    # districts keep in identifier.
    integration_id_field: Literal["identifier", "sourcedId", "email", "username"] | None = None
    # Further logins per user (logins.csv), e.g. the email address through Google beside the
    # SIS username through SAML; Canvas only adds logins (one goes with its user).
    logins: list[Login] = []
    # Opt-in: OneRoster users of these roles become account admins (admins.csv); an admin who
    # leaves the role or the SIS is removed (deleted), only ever an admin this pipeline made.
    admins: list[Admins] = []
    scope: Scope = Scope()  # which schools, sessions, classes and people go to Canvas
    # Above this share of a tenant's active users, courses, sections or enrollments
    # removed in one night, nothing is uploaded until an operator allows it.
    max_removal_share: float = Field(0.05, ge=0, le=1)
    # "delta": we diff and send only changes; "diffing": a full snapshot and Canvas diffs.
    import_mode: Literal["delta", "diffing"] = "delta"
    change_threshold: int = Field(5, ge=1, le=100)  # diffing mode only
    override_sis_stickiness: bool = False
    dry_run: bool = False  # build the zip, never upload
    # Gradebook reads in flight at once with the tenant's token: Canvas's bucket (high-water
    # mark 700, 50 up front a request) throttles at about fourteen.
    max_concurrency: int = Field(8, ge=1, le=13)
    # Which courses grade passback reads each night. "courses": every provisioned course (a
    # request each, even without a gradebook); "grade_export": the account's Grade Export
    # report names the courses where a student has a score, and only those (and the courses
    # we passed grades back from) are read: for districts of tens of thousands of courses. A
    # course's lineItems then reach the SIS with its first grade.
    gradebook_discovery: Literal["courses", "grade_export"] = "courses"
    # source simulator only: one course in this many has a gradebook that passes grades back.
    gradebook_share: int = Field(40, ge=1)
    # source simulator only: every SIS import fails (failed_with_messages), as a Canvas whose
    # importer is broken for the night (the fleet's isolation run).
    simulator_fail_imports: bool = False

    @model_validator(mode="after")
    def _needs(self) -> Canvas:
        if self.crosslist != "none" and self.course_mode != "class":
            raise ValueError(
                "crosslist: course_mode course_term already makes a course of a course's "
                "classes in a term (a section each); cross-listing needs course_mode class"
            )
        if self.source == "rest" and not (
            self.base_url.startswith(("https://", "http://")) and self.token_env
        ):
            raise ValueError("canvas source rest needs base_url (http or https) and token_env")
        return self


class Gpb(_Strict):
    """Grade passback: Canvas gradebook to the SIS's OneRoster gradebook."""

    # "standard": we choose lineItem sourcedIds (reusing a SIS lineItem of the same title and
    # due date); "modified": new lineItems go without one and the SIS's is kept.
    endpoints: Literal["standard", "modified", "off"] = "off"
    # The SIS gradebook base; default: the rostering base (1.1) or its /gradebook/v1p2 sibling (1.2).
    base_url: str | None = None
    # "graded": every published graded assignment, quiz and discussion that counts toward the
    # final grade; "post_to_sis": only those teachers marked "Post to SIS".
    assignments: Literal["graded", "post_to_sis"] = "graded"
    # Assignments omitted from the Canvas final grade stay out of the SIS (whose own grade
    # would count them) unless this is true.
    include_omitted: bool = False
    course_grades: bool = True
    course_grade_title: str = "Course grade"
    grading_periods: bool = False  # lineItems name the grading period that holds their due date
    # An assignment group that matches no SIS category goes to this category (by title), or,
    # with create_categories, gets a SIS category of its own; otherwise it is reported and not sent.
    default_category: str | None = None
    create_categories: bool = False
    # A grade the SIS changed after our last push: "keep_sis" leaves it and reports it;
    # "overwrite" sends ours anyway (and reports it).
    on_sis_change: Literal["keep_sis", "overwrite"] = "keep_sis"
    # Grades of a course are passed back until this many days after its term ended (teachers
    # finish grading), never later: a closed term's grades in the SIS are final.
    days_after_term: int = Field(14, ge=0, le=365)
    max_concurrency: int = Field(2, ge=1, le=16)
    # How a lineItem or result of ours that Canvas no longer implies leaves the SIS: "delete"
    # (DELETE), or "tobedeleted" (the record PUT back with status tobedeleted) for SIS and
    # configurations that take only PUT. Default: see ``removal_method``.
    removal: Literal["delete", "tobedeleted"] | None = None
    # The removal guard: a pass that would remove more than this share of our lineItems or
    # results in the courses it read (and more than removal_guard_floor of them) stops with a
    # blocking check; --allow-mass-removal lets one run through.
    max_removal_share: float = Field(0.10, ge=0, le=1)
    removal_guard_floor: int = Field(10, ge=0)
    # Intraday grade sync: how often (seconds) the tenant's grade_sync sensor reads Canvas's
    # Grade Change Log and sends what changed; 0 turns it off.
    sync_interval_s: int = Field(300, ge=0)
    # Infinite Campus: gradebook calls carry x-vendor-authorization: <key>:<secret>.
    vendor_key_env: str | None = None
    vendor_secret_env: str | None = None

    @model_validator(mode="after")
    def _needs(self) -> Gpb:
        if (self.vendor_key_env is None) != (self.vendor_secret_env is None):
            raise ValueError("vendor_key_env and vendor_secret_env go together")
        if self.base_url is not None and not self.base_url.startswith(("https://", "http://")):
            raise ValueError("base_url must be an http(s) URL")
        return self


# SIS whose gradebook takes no DELETE: a removal is a PUT with status tobedeleted.
PUT_ONLY_VENDORS = frozenset({"focus", "progressbook"})


def removal_method(tenant: Tenant) -> str:
    """The tenant's choice, or: PUT tobedeleted for the Modified configuration (its SIS
    takes PUT) and for vendors without DELETE, DELETE otherwise."""
    if tenant.gpb.removal is not None:
        return tenant.gpb.removal
    if tenant.gpb.endpoints == "modified" or tenant.vendor in PUT_ONLY_VENDORS:
        return "tobedeleted"
    return "delete"


class Validation(_Strict):
    # Above this share of quarantined records, the collection's check fails and blocks.
    max_quarantined_share: float = Field(0.05, ge=0, le=1)


class Privacy(_Strict):
    """Data minimisation, applied to every record before anything is written."""

    # Birth dates, race and ethnicity never go to Canvas: fetched only when a tenant asks
    # (true), and only then is the demographics scope requested.
    demographics: bool = False
    contact_fields: Literal["keep", "drop", "hash"] = "keep"  # users' email, sms and phone
    hash_salt_env: str | None = None  # hash: a secret salt, so hashes cannot be looked up

    def leaves_out(self, collection: str) -> bool:
        """Whether the tenant's minimisation never fetches this collection."""
        return collection == "demographics" and not self.demographics

    @model_validator(mode="after")
    def _salt(self) -> Privacy:
        if self.contact_fields == "hash" and not self.hash_salt_env:
            raise ValueError("contact_fields hash needs hash_salt_env")
        return self


class CanvasCsv(_Strict):
    """Instructure's CSV Gateway: a district with no OneRoster API drops Canvas-format SIS CSV
    files (accounts, terms, courses, sections, users, enrollments, user_observers) each night,
    a zip or a folder per night, in a local folder or on SFTP (the rules of OneRoster drops)."""

    path: str  # a folder of nightly drops, one zip, or sftp://user@host[:port]/dir
    sftp_password_env: str | None = None
    sftp_key_env: str | None = None
    sftp_host_key: str | None = None
    max_drop_bytes: int = Field(40_000_000_000, ge=1)  # refused before reading beyond this

    @model_validator(mode="after")
    def _sftp_needs(self) -> CanvasCsv:
        if self.path.startswith("sftp://"):
            if not (self.sftp_password_env or self.sftp_key_env):
                raise ValueError("an sftp:// path needs sftp_password_env or sftp_key_env")
            if not self.sftp_host_key:
                raise ValueError(
                    "an sftp:// path needs sftp_host_key (the server's public key, "
                    "as `ssh-keyscan` prints it): credentials go only to that server"
                )
        return self


class Tenant(_Strict):
    vendor: Vendor
    enabled: bool = True
    # A district's roster: its OneRoster SIS, or (CSV Gateway) Canvas-format drops.
    oneroster: OneRoster | None = None
    canvas_csv: CanvasCsv | None = None
    canvas: Canvas | None = None
    gpb: Gpb = Gpb()
    validation: Validation = Validation()
    privacy: Privacy = Privacy()

    @property
    def gateway(self) -> bool:
        """A CSV Gateway tenant: Canvas-format drops, no OneRoster."""
        return self.canvas_csv is not None

    @model_validator(mode="after")
    def _one_roster_source(self) -> Tenant:
        if (self.oneroster is None) == (self.canvas_csv is None):
            raise ValueError(
                "give either oneroster (the SIS's OneRoster) or canvas_csv (Canvas-format drops, "
                "the CSV Gateway), not both or neither"
            )
        if self.canvas_csv is not None and self.canvas is None:
            raise ValueError("canvas_csv needs a canvas section: its rows are imported into Canvas")
        if self.canvas_csv is not None and self.gpb.endpoints != "off":
            raise ValueError(
                "gpb: a canvas_csv tenant has no OneRoster gradebook to pass grades back to"
            )
        return self

    @model_validator(mode="after")
    def _vendor_facts(self) -> Tenant:
        """What a vendor's SIS is known to speak; ``vendor: generic`` is free of it."""
        if self.oneroster is None:
            return self
        speaks = VENDOR_VERSION.get(self.vendor)
        if speaks is not None and self.oneroster.version != speaks:
            raise ValueError(
                f"oneroster.version: {self.vendor} speaks OneRoster {speaks}, not "
                f"{self.oneroster.version} (vendor: generic for a SIS that differs)"
            )
        if self.vendor == "infinite_campus" and self.oneroster.source == "rest":
            auth = self.oneroster.auth
            if auth is not None and auth.type != "oauth2":
                raise ValueError(
                    f"oneroster.auth.type: Infinite Campus accepts OAuth 2.0 only, not {auth.type}"
                )
            if self.gpb.endpoints != "off" and not self.gpb.vendor_key_env:
                raise ValueError(
                    "gpb.vendor_key_env: Infinite Campus gradebook calls need the "
                    "x-vendor-authorization key and secret (gpb.vendor_key_env, gpb.vendor_secret_env)"
                )
        return self

    @model_validator(mode="after")
    def _gpb_needs(self) -> Tenant:
        if self.gpb.endpoints == "off":
            return self
        if self.canvas is None:
            raise ValueError("gpb needs a canvas section: grades are read from Canvas")
        if (
            self.oneroster is not None
            and self.oneroster.source == "csv"
            and (self.gpb.base_url is None or self.oneroster.auth is None)
        ):
            raise ValueError(
                "gpb with a csv source needs gpb.base_url and oneroster.auth: grades go to the SIS over REST"
            )
        return self


class TenantsFile(_Strict):
    tenants: dict[TenantId, Tenant]


class TenantsFileError(ConfigurationError, ValueError):
    """The tenants file cannot be used; the message says which tenant, which key and why."""


# Variables that name who we are rather than prove it: kept readable in messages.
NOT_SECRET = ("client_id_env", "vendor_key_env")


def secret_variables(tenant: Tenant) -> dict[str, list[tuple[str, str]]]:
    """The environment variables a tenant's real services need, by the group of assets that
    reads them (``oneroster``, ``canvas``, ``gpb``): (tenants-file key, variable)."""
    needs: dict[str, list[tuple[str, str]]] = {"oneroster": [], "canvas": [], "gpb": []}
    o = tenant.oneroster
    if o is not None and o.source == "rest" and o.auth is not None:
        a = o.auth
        for key in ("token_env",) if a.type == "bearer" else ("client_id_env", "client_secret_env"):
            if getattr(a, key):
                needs["oneroster"].append((f"auth.{key}", getattr(a, key)))
    if tenant.privacy.contact_fields == "hash" and tenant.privacy.hash_salt_env:
        needs["oneroster"].append(("privacy.hash_salt_env", tenant.privacy.hash_salt_env))
    if tenant.canvas is not None and tenant.canvas.source == "rest" and tenant.canvas.token_env:
        needs["canvas"].append(("canvas.token_env", tenant.canvas.token_env))
        needs["gpb"].append(("canvas.token_env", tenant.canvas.token_env))
    if tenant.gpb.endpoints != "off":
        needs["gpb"] += needs["oneroster"][:2] if o is not None and o.source == "rest" else []
        for key in ("vendor_key_env", "vendor_secret_env"):
            if getattr(tenant.gpb, key):
                needs["gpb"].append((f"gpb.{key}", getattr(tenant.gpb, key)))
    return needs


def read_secret(env: Mapping[str, str], tenant_id: str, key: str, env_name: str | None) -> str:
    """The secret in the environment variable the tenants file names at ``key``."""
    value = env.get(env_name or "")
    if not value:
        raise MissingSecretError(
            f"tenant {tenant_id!r}: environment variable {env_name} ({key}) is not set"
        )
    if not key.endswith(NOT_SECRET):
        remember(value)
    return value


def unregistered(tenants: TenantsFile, registered: Iterable[str]) -> list[str]:
    """Enabled tenants without a partition yet. Disabled ones keep theirs (and their data)."""
    known = set(registered)
    return sorted(t for t, cfg in tenants.tenants.items() if cfg.enabled and t not in known)


def _model_at(loc: list) -> type[BaseModel] | None:
    """The model whose key ``loc`` ends on (``loc`` from a tenant's entry down)."""
    model: type[BaseModel] | None = Tenant
    for part in loc[:-1]:
        field = model.model_fields.get(str(part)) if model else None
        annotation = field.annotation if field else None
        for candidate in (annotation, *typing.get_args(annotation)):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                model = candidate
                break
        else:
            return None
    return model


def _unknown_key(loc: list) -> str:
    """An unknown key, with the nearest one the place takes ("did you mean")."""
    model = _model_at(loc)
    if model is None:
        return "not a key here"
    known = sorted(model.model_fields)
    near = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
    if near:
        return f"not a key here; did you mean {near[0]!r}?"
    return "not a key here; the keys are " + ", ".join(known)


def _describe(error: ValidationError) -> str:
    lines = []
    for e in error.errors():
        loc = list(e["loc"])
        where = ""
        if len(loc) >= 2 and loc[0] == "tenants":
            tenant = loc[1]
            if len(loc) >= 3 and loc[2] == "[key]":
                lines.append(
                    f"tenant id {tenant!r}: must match {TENANT_ID_PATTERN} (lower-case letters, digits, '-'; starts with a letter; at most 63)"
                )
                continue
            where = f"tenant {tenant!r}"
            loc = loc[2:]
        key = ".".join(
            str(p)
            for p in loc
            if p not in ("function-after",) and not str(p).startswith("function-")
        )
        message = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            message = _unknown_key(loc) if where else "not a key here; the file takes tenants"
        if not key and where:  # a tenant-wide rule names its key itself
            lines.append(f"{where}: {message}")
            continue
        lines.append(f"{where + ': ' if where else ''}{key or '(root)'}: {message}")
    return "\n".join(lines)


# libyaml's parser where PyYAML has it: a thousand tenants parse in a tenth of the time.
_YAML_BASE = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _DuplicateKey(yaml.YAMLError):
    """A key written twice in one mapping: YAML lets the last one win, silently."""


class _UniqueKeyLoader(_YAML_BASE):  # type: ignore[misc, valid-type]
    """The safe loader, refusing a key defined twice at any level (a second tenant id, a
    second ``vendor:``): which one was meant cannot be told, so neither is taken."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                first = seen.get(key)
            except TypeError:
                continue  # an unhashable key: the constructor explains it
            if first is not None:
                raise _DuplicateKey(
                    f"line {key_node.start_mark.line + 1}: key {key!r} is defined twice "
                    f"(first at line {first.start_mark.line + 1}); keep one"
                )
            seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


def parse_tenants(text: str, source: str = "tenants file") -> TenantsFile:
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)
    except _DuplicateKey as exc:
        raise TenantsFileError(f"{source}: {exc}") from None
    except yaml.YAMLError as exc:
        raise TenantsFileError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("tenants"), dict):
        raise TenantsFileError(f"{source}: must be a mapping with a 'tenants' mapping at the top")
    try:
        return TenantsFile.model_validate(raw)
    except ValidationError as exc:
        raise TenantsFileError(f"{source} is invalid:\n{_describe(exc)}") from None


def tenants_path() -> Path:
    return Path(os.environ.get("SIS_PIPELINES_TENANTS", "tenants.yaml"))


# Every sensor tick and step reads the tenants file (a thousand grade_sync sensors tick every
# few minutes): the file is read each time, so an edit is seen at once, but the same text is
# parsed and validated once (the models are frozen, so the parsed file can be shared).
_parsed: tuple[str, TenantsFile] | None = None


def load_tenants(path: str | Path | None = None) -> TenantsFile:
    global _parsed
    path = Path(path) if path is not None else tenants_path()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TenantsFileError(f"cannot read tenants file {path}: {exc.strerror}") from None
    last = _parsed
    if last is not None and last[0] == text:
        return last[1]
    tenants = parse_tenants(text, str(path))
    _parsed = (text, tenants)
    return tenants
