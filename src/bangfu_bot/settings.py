"""One frozen Settings object, built in one function from BANGFU_* variables and a TOML file.

Nothing else in the package reads the environment. A bad value raises SettingsError whose
message is one line naming the variable; the CLI prints it and exits with status 2.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import date, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_API_BASE = "https://api.weixin.qq.com"

# The sandbox identity is public on purpose: it only ever talks to the in-process fake WeChat.
SANDBOX_APPID = "wx5andb0xbangfu01"
SANDBOX_TOKEN = "bangfusandbox"
SANDBOX_SECRET = "bangfu-sandbox-secret"
SANDBOX_TEMPLATE = "sandbox-notice-template"
SANDBOX_AES_KEY = "YmFuZ2Z1LWJvdC1zYW5kYm94LWtleS0zMi1ieXRlcyE"


class SettingsError(ValueError):
    """A configuration value is wrong; the message is one line naming the variable."""


@dataclass(frozen=True)
class Settings:
    """Everything the service is configured with."""

    database_url: str
    wechat_appid: str
    wechat_secret: str
    wechat_token: str
    wechat_aes_key: str
    wechat_aes_key_previous: str
    wechat_api_base: str
    wechat_account_type: str
    wechat_modes: frozenset[str]
    host: str
    port: int
    timezone: str
    max_clock_skew_s: int
    reply_budget_s: float
    max_body_bytes: int
    db_busy_timeout_ms: int
    spool_dir: str
    storage_dir: str
    batch_window_ms: float
    batch_max: int
    max_inflight: int
    http_timeout_s: float
    conversations_dir: str
    flow_expiry_h: float
    notice_days: int
    notice_working_days: bool
    evaluation_basis: str
    complaints_contact: str
    review_opens: str
    wechat_template_id: str
    wechat_templates: tuple[tuple[str, str], ...]
    quiet_hours: str
    outbox_concurrency: int
    loan_term_years: int
    loan_rate_bp: int
    loan_allow_second: bool
    guarantor_call_days: int
    spool_retry_s: float
    shutdown_grace_s: float
    leader_retry_s: float
    public_url: str
    report_font: str
    sandbox: bool

    @property
    def tz(self) -> ZoneInfo:
        """The local time zone (dates are calendar dates there)."""
        return ZoneInfo(self.timezone)

    @property
    def is_sqlite(self) -> bool:
        """Whether the store is the embedded SQLite file."""
        return self.database_url.startswith("sqlite")

    @property
    def has_credentials(self) -> bool:
        """Whether real WeChat credentials were configured (not the public sandbox ones)."""
        return self.wechat_appid != SANDBOX_APPID and bool(
            self.wechat_appid and self.wechat_secret and self.wechat_token
        )

    @property
    def template_id(self) -> str:
        """The notice template: the configured one, or the sandbox's own."""
        return self.wechat_template_id or (SANDBOX_TEMPLATE if self.sandbox else "")

    @property
    def awake_hours(self) -> tuple[time, time]:
        """When non-urgent messages may be sent: quiet hours are given as when to be quiet;
        either may cross midnight (21:00-08:00 is awake 08:00-21:00, 12:00-14:00 is awake
        14:00 to 12:00 the next day)."""
        quiet_from, quiet_to = self.quiet_hours.split("-")
        return time.fromisoformat(quiet_to), time.fromisoformat(quiet_from)

    def features(self) -> dict[str, bool]:
        """Which platform features this account type allows (WECHAT.md, account types)."""
        service = self.wechat_account_type == "service"
        return {
            "customer_service_messages": True,
            "mass_send_by_tag": True,
            "template_messages": service,
            "mass_send_by_openids": service,
            "parametric_qr_codes": service,
        }


def _str(value: str, name: str) -> str:
    return value.strip()


def _templates(value: str, name: str) -> tuple[tuple[str, str], ...]:
    """kind=ID pairs separated by commas: reminder=TM1,decision=TM2 (the kinds are
    conversations/templates.toml's; checked against it when the dispatcher is built)."""
    pairs: dict[str, str] = {}
    for part in value.split(","):
        if not part.strip():
            continue
        kind, sep, template_id = (piece.strip() for piece in part.partition("="))
        if not sep or not re.fullmatch(r"[a-z_]+", kind) or not template_id:
            raise SettingsError(f"{name}: expected kind=TEMPLATE_ID pairs, got {part.strip()!r}")
        if kind in pairs:
            raise SettingsError(f"{name}: {kind} given twice")
        pairs[kind] = template_id
    return tuple(sorted(pairs.items()))


def _int_between(low: int, high: int) -> Callable[[str, str], int]:
    def parse(value: str, name: str) -> int:
        try:
            number = int(value.strip())
        except ValueError:
            raise SettingsError(f"{name}: expected a whole number, got {value!r}") from None
        if not low <= number <= high:
            raise SettingsError(f"{name}: must be between {low} and {high}, got {number}")
        return number

    return parse


def _float_between(low: float, high: float) -> Callable[[str, str], float]:
    def parse(value: str, name: str) -> float:
        try:
            number = float(value.strip())
        except ValueError:
            raise SettingsError(f"{name}: expected a number, got {value!r}") from None
        if not low <= number <= high:
            raise SettingsError(f"{name}: must be between {low} and {high}, got {number}")
        return number

    return parse


def _bool(value: str, name: str) -> bool:
    text = value.strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off", ""}:
        return False
    raise SettingsError(f"{name}: expected true or false, got {value!r}")


def _database_url(value: str, name: str) -> str:
    url = value.strip()
    if url.startswith("postgres://"):
        url = "postgresql+asyncpg://" + url[len("postgres://") :]
    elif url.startswith("postgresql://"):
        url = "postgresql+asyncpg://" + url[len("postgresql://") :]
    elif url.startswith("sqlite:///"):
        url = "sqlite+aiosqlite:///" + url[len("sqlite:///") :]
    if not url.startswith(("sqlite+aiosqlite:///", "postgresql+asyncpg://")):
        raise SettingsError(
            f"{name}: expected a sqlite:/// or postgresql:// URL, got {_redact_url(url)!r}"
        )
    return url


def _redact_url(url: str) -> str:
    # Never echo a password from a database URL.
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url


def _aes_key(value: str, name: str) -> str:
    key = value.strip()
    if not key:
        return ""
    if len(key) != 43:
        raise SettingsError(f"{name}: an EncodingAESKey has 43 characters, got {len(key)}")
    try:
        decoded = base64.b64decode(key + "=", validate=True)
    except (binascii.Error, ValueError):
        raise SettingsError(f"{name}: not a valid EncodingAESKey (base64 letters only)") from None
    if len(decoded) != 32:
        raise SettingsError(f"{name}: not a valid EncodingAESKey (must decode to 32 bytes)")
    return key


def _one_of(*allowed: str) -> Callable[[str, str], str]:
    def parse(value: str, name: str) -> str:
        choice = value.strip().lower()
        if choice not in allowed:
            raise SettingsError(f"{name}: expected one of {', '.join(allowed)}, got {value!r}")
        return choice

    return parse


def _quiet_hours(value: str, name: str) -> str:
    text = value.strip()
    match = re.fullmatch(r"(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})", text)
    if (
        not match
        or int(match[1]) > 23
        or int(match[3]) > 23
        or int(match[2]) > 59
        or int(match[4]) > 59
    ):
        raise SettingsError(f"{name}: expected HH:MM-HH:MM (e.g. 21:00-08:00), got {value!r}")
    quiet = f"{int(match[1]):02d}:{match[2]}-{int(match[3]):02d}:{match[4]}"
    start, end = quiet.split("-")
    if start == end:
        # Whether 08:00-08:00 means "always quiet" or "never" cannot be told: refuse it.
        raise SettingsError(
            f"{name}: the quiet hours start and end at the same time, got "
            f"{value!r} (e.g. 21:00-08:00 or 12:00-14:00)"
        )
    return quiet


MODES = ("plain", "compatible", "safe")


def _modes(value: str, name: str) -> frozenset[str] | None:
    """The message modes pushes may arrive in; None (not set): worked out from the key."""
    words = [word.strip().lower() for word in re.split(r"[,\s]+", value) if word.strip()]
    if not words:
        return None
    unknown = [word for word in words if word not in MODES]
    if unknown:
        raise SettingsError(f"{name}: expected some of {', '.join(MODES)}, got {value!r}")
    return frozenset(words)


def _month_day(value: str, name: str) -> str:
    text = value.strip()
    try:
        month, day = (int(part) for part in text.split("-"))
        date(2024, month, day)  # a leap year, so 02-29 is accepted
    except ValueError:
        raise SettingsError(f"{name}: expected MM-DD (e.g. 12-01), got {value!r}") from None
    return f"{month:02d}-{day:02d}"


def _account_type(value: str, name: str) -> str:
    kind = value.strip().lower()
    if kind not in {"service", "subscription"}:
        raise SettingsError(f"{name}: expected 'service' or 'subscription', got {value!r}")
    return kind


def _timezone(value: str, name: str) -> str:
    zone = value.strip()
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(f"{name}: unknown time zone {value!r}") from None
    return zone


def _api_base(value: str, name: str) -> str:
    base = value.strip().rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise SettingsError(f"{name}: expected an http(s):// URL, got {value!r}")
    return base


def _public_url(value: str, name: str) -> str:
    url = value.strip().rstrip("/")
    if url and not url.startswith(("http://", "https://")):
        raise SettingsError(f"{name}: expected an http(s):// URL, got {value!r}")
    return url


# field -> (parser, default). Defaults are strings so they go through the same parser.
_SPEC: dict[str, tuple[Callable[[str, str], Any], str]] = {
    "database_url": (_database_url, "sqlite+aiosqlite:///storage/bangfu.db"),
    "wechat_appid": (_str, ""),
    "wechat_secret": (_str, ""),
    "wechat_token": (_str, ""),
    "wechat_aes_key": (_aes_key, ""),
    "wechat_aes_key_previous": (_aes_key, ""),
    "wechat_api_base": (_api_base, DEFAULT_API_BASE),
    "wechat_account_type": (_account_type, "service"),
    "wechat_modes": (_modes, ""),
    "host": (_str, "127.0.0.1"),
    "port": (_int_between(0, 65535), "8080"),
    "timezone": (_timezone, "Asia/Shanghai"),
    "max_clock_skew_s": (_int_between(0, 86400 * 365), "300"),
    "reply_budget_s": (_float_between(0.05, 4.5), "3.0"),
    "max_body_bytes": (_int_between(1024, 1024 * 1024), "65536"),
    "db_busy_timeout_ms": (_int_between(0, 600000), "2000"),
    "spool_dir": (_str, ""),
    "storage_dir": (_str, "storage"),
    "batch_window_ms": (_float_between(0, 1000), "2"),
    "batch_max": (_int_between(1, 10000), "64"),
    "max_inflight": (_int_between(1, 1_000_000), "2000"),
    "http_timeout_s": (_float_between(0.1, 120), "10"),
    "conversations_dir": (_str, "conversations"),
    "flow_expiry_h": (_float_between(0.01, 24 * 365), "72"),
    "notice_days": (_int_between(1, 60), "7"),
    "notice_working_days": (_bool, "false"),
    "evaluation_basis": (_one_of("entitled", "present"), "entitled"),
    # stays in Python: a default of BANGFU_COMPLAINTS_CONTACT, which each county sets
    "complaints_contact": (_str, "乡镇党委组织委员"),
    "review_opens": (_month_day, "12-01"),
    "wechat_template_id": (_str, ""),
    "wechat_templates": (_templates, ""),
    "quiet_hours": (_quiet_hours, "21:00-08:00"),
    "outbox_concurrency": (_int_between(1, 256), "16"),
    "loan_term_years": (_int_between(1, 10), "2"),
    "loan_rate_bp": (_int_between(0, 5000), "435"),
    "loan_allow_second": (_bool, "false"),
    "guarantor_call_days": (_int_between(1, 365), "30"),
    # How often a journaled push is retried while the store is away; how long shutdown waits
    # for pushes under way; how often a follower tries to become the leader.
    "spool_retry_s": (_float_between(0.05, 600), "5"),
    "shutdown_grace_s": (_float_between(0, 600), "5"),
    "leader_retry_s": (_float_between(0.05, 600), "15"),
    # Where people reach the bot from outside (the desk's cookies are Secure when https).
    "public_url": (_public_url, ""),
    # The CJK font the annual report's PDF embeds (else one found on the machine).
    "report_font": (_str, ""),
    "sandbox": (_bool, ""),
}


def env_name(field: str) -> str:
    """The environment variable that sets a field."""
    return "BANGFU_" + field.upper()


def load_settings(
    environ: Mapping[str, str] | None = None,
    config_file: str | Path | None = None,
    **overrides: Any,
) -> Settings:
    """Build Settings: defaults < TOML file < BANGFU_* environment < keyword overrides."""
    environ = os.environ if environ is None else environ
    raw: dict[str, str] = {field: default for field, (_, default) in _SPEC.items()}
    source: dict[str, str] = {field: env_name(field) for field in _SPEC}
    if config_file:
        for field, value in _read_toml(Path(config_file)).items():
            raw[field] = value
            source[field] = f"{config_file}: {field}"
    for field in _SPEC:
        if env_name(field) in environ:
            raw[field] = environ[env_name(field)]
            source[field] = env_name(field)
    values: dict[str, Any] = {}
    for field, (parse, _) in _SPEC.items():
        values[field] = parse(raw[field], source[field])
    values.update(overrides)
    return _finish(values)


def _read_toml(path: Path) -> dict[str, str]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SettingsError(f"--config: file not found: {path}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SettingsError(f"--config: {path} is not valid TOML ({exc})") from None
    known = {f.name for f in fields(Settings)}
    out: dict[str, str] = {}
    for key, value in data.items():
        field = key.lower().removeprefix("bangfu_")
        if field not in known:
            raise SettingsError(f"--config: {path}: unknown setting {key!r}")
        out[field] = str(value).lower() if isinstance(value, bool) else str(value)
    return out


def _finish(values: dict[str, Any]) -> Settings:
    if not values["spool_dir"]:
        values["spool_dir"] = str(Path(values["storage_dir"]) / "spool")
    has_credentials = bool(values["wechat_appid"] and values["wechat_secret"])
    if not has_credentials:
        values["sandbox"] = True
    if values["sandbox"]:
        # The sandbox is a training ground, not a back door: loopback only.
        values["host"] = "127.0.0.1"
    if not has_credentials:
        # The fixed sandbox identity only ever talks to the in-process fake WeChat.
        values["wechat_appid"] = SANDBOX_APPID
        values["wechat_secret"] = SANDBOX_SECRET
        values["wechat_token"] = values["wechat_token"] or SANDBOX_TOKEN
        values["wechat_aes_key"] = values["wechat_aes_key"] or SANDBOX_AES_KEY
    elif not values["wechat_token"]:
        raise SettingsError("BANGFU_WECHAT_TOKEN: required when BANGFU_WECHAT_APPID is set")
    if values["wechat_modes"] is None and values["sandbox"]:
        # The training page sends plain or safe pushes, as its switch says.
        values["wechat_modes"] = frozenset(MODES)
    elif values["wechat_modes"] is None:
        # With a key, only safe mode: a plain push's signature does not cover its body, so
        # a captured URL could carry a forged one. Compatible must be asked for by name.
        values["wechat_modes"] = frozenset({"safe"} if values["wechat_aes_key"] else {"plain"})
    elif values["wechat_modes"] - {"plain"} and not values["wechat_aes_key"]:
        raise SettingsError(
            "BANGFU_WECHAT_MODES: compatible and safe mode need BANGFU_WECHAT_AES_KEY"
        )
    return Settings(**values)
