"""Template messages per kind of notice (conversations/templates.toml).

Outside the 48-hour window a member gets a template message: typed fields of a few
characters, no greeting. The domain says what a notice is about as `Facts` (stored on the
outbox row); the dispatcher picks the template of the notice's kind and fills its fields
from the facts, each value fitted to its field type's platform rule (a long `thing` is cut
with …, never refused). A kind with no configured template id, or a notice lacking a fact
its template needs, goes with the generic template.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bangfu_bot.common.dates import chinese_date, month_day
from bangfu_bot.common.money import yuan
from bangfu_bot.notify.channels import shorten
from bangfu_bot.texts import speaker

GENERIC = "generic"
FACTS = frozenset({"what", "amount", "due", "phrase", "detail", "name"})
ALWAYS = frozenset({"content", "subject", "now", "summary"})  # derived, see `fill`
FILE = "templates.toml"

say = speaker("bangfu_bot.notify")

# Where a text splits into sentences (each kept with the mark that ends it).
_SENTENCE = re.compile(r"(?<=[。？！?!\n])")
_HAN = re.compile(r"[\u3400-\u9fff\U00020000-\U0003ffff]")


class TemplatesInvalid(ValueError):
    """templates.toml is wrong; the message names the file and what."""


@dataclass(frozen=True, slots=True)
class Facts:
    """What a notice is about, for its template outside the customer-service window: the
    kind of notice (`templates.toml`'s [kind.NAME]) and the facts its fields are filled
    from. Amounts are integer fen."""

    notice: str
    what: str = ""  # 借款第1期, 帮扶申请, 春节走访
    amount_fen: int | None = None
    due: date | None = None
    phrase: str = ""  # ≤ 5 汉字: 即将到期, 已批准
    detail: str = ""  # a second short thing: the reason, what is left
    name: str = ""

    def json(self) -> dict[str, Any]:
        """As stored on the outbox row (only the facts given)."""
        stored: dict[str, Any] = {"notice": self.notice}
        for key in ("what", "phrase", "detail", "name"):
            if getattr(self, key):
                stored[key] = getattr(self, key)
        if self.amount_fen is not None:
            stored["amount"] = self.amount_fen
        if self.due is not None:
            stored["due"] = self.due.isoformat()
        return stored


def sentence_facts(notice: str, text: str, **facts: Any) -> Facts:
    """Facts read from a text: its first sentence is what it is about, the next one the
    detail (a to-do, a notice); `facts` add or override."""
    parts = [part.strip() for part in _SENTENCE.split(text.strip()) if part.strip()] or [text]
    found: dict[str, Any] = {"what": parts[0].rstrip("。")}
    if len(parts) > 1:
        found["detail"] = parts[1].rstrip("。")
    return Facts(notice, **{**found, **facts})


@dataclass(frozen=True, slots=True)
class Field:
    """One field of a template: its key, type, label and the fact that fills it."""

    key: str
    type: str
    label: str
    fact: str
    fallback: str = ""


@dataclass(frozen=True, slots=True)
class Template:
    """The template of one kind of notice."""

    kind: str
    title: str
    fields: tuple[Field, ...]
    serves: tuple[str, ...] = ()


# The generic template as documented in the README (thing1 事项, thing2 内容, time3 时间): the
# one used when no templates.toml is given (a bare DeliveryRules).
_GENERIC_FIELDS = (
    Field("thing1", "thing", "", "subject"),
    Field("thing2", "thing", "", "summary", "content"),
    Field("time3", "time", "", "now"),
)


@dataclass(frozen=True)
class Catalogue:
    """Every kind's template and each field type's maximum length."""

    kinds: Mapping[str, Template] = field(
        default_factory=lambda: {GENERIC: Template(GENERIC, say("title_default"), _GENERIC_FIELDS)}
    )
    limits: Mapping[str, int] = field(default_factory=lambda: {"thing": 20, "time": 20})

    def kind_of(self, outbox_kind: str, facts: Mapping[str, Any] | None) -> str:
        """The kind of notice of an outbox row: the one its facts name, else the kind that
        serves its outbox kind, else generic."""
        if facts and facts.get("notice") in self.kinds:
            return str(facts["notice"])
        for template in self.kinds.values():
            if outbox_kind in template.serves:
                return template.kind
        return GENERIC

    def fill(
        self,
        kind: str,
        facts: Mapping[str, Any] | None,
        *,
        content: str,
        subject: str,
        now: datetime,
        tz: ZoneInfo,
    ) -> dict[str, str] | None:
        """The template's data (key → value, each fitted to its type), or None when a fact
        it needs is missing."""
        template = self.kinds.get(kind)
        if template is None:
            return None
        known: dict[str, Any] = {
            key: value for key, value in (facts or {}).items() if value not in (None, "")
        }
        known.update(content=content, subject=subject, now=now)
        summary = self.summary(known, tz)
        if summary:
            known["summary"] = summary
        data = {}
        for item in template.fields:
            value = known.get(item.fact)
            if value is None and item.fallback:
                value = known.get(item.fallback)
            fitted = None if value is None else fit(item.type, value, self.limit(item.type), tz)
            if not fitted:
                return None
            data[item.key] = fitted
        return data

    def summary(self, facts: Mapping[str, Any], tz: ZoneInfo) -> str:
        """The facts on one line for a `thing` (what, amount, date, then the phrase if it
        still fits): 借款第1期 2174元 12月17日; empty without facts."""
        parts = [str(facts["what"])] if facts.get("what") else []
        if facts.get("amount") is not None:
            parts.append(fit("amount", facts["amount"], self.limit("amount"), tz))
        if facts.get("due"):
            parts.append(month_day(_day(facts["due"], tz)))
        if not parts:
            return ""
        line = " ".join(part for part in parts if part)
        if facts.get("phrase") and len(line) + 1 + len(facts["phrase"]) <= self.limit("thing"):
            line += " " + str(facts["phrase"])
        return line

    def limit(self, type_: str) -> int:
        """The field type's maximum length."""
        return self.limits.get(type_, 20)


def _thing(value: Any, limit: int, tz: ZoneInfo) -> str:
    return shorten(str(value), limit)


def _phrase(value: Any, limit: int, tz: ZoneInfo) -> str:
    return "".join(_HAN.findall(str(value)))[:limit]


def _name(value: Any, limit: int, tz: ZoneInfo) -> str:
    text = str(value)
    han = "".join(_HAN.findall(text))
    if han:
        return han[:limit]
    return "".join(ch for ch in text if ch.isascii() and ch.isalpha())[: limit * 2]


def _amount(value: Any, limit: int, tz: ZoneInfo) -> str:
    # yuan(): "2174元", "2174.50元": digits, an optional decimal part, 元 at the end.
    fen = int(value)
    return yuan(fen) if fen >= 0 and len(str(fen // 100)) <= limit else ""


def _day(value: Any, tz: ZoneInfo) -> date:
    if isinstance(value, datetime):
        return value.astimezone(tz).date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


def _date(value: Any, limit: int, tz: ZoneInfo) -> str:
    return chinese_date(_day(value, tz))


def _time(value: Any, limit: int, tz: ZoneInfo) -> str:
    if isinstance(value, datetime):
        local = value.astimezone(tz)
        return f"{chinese_date(local)} {local:%H:%M}"
    return chinese_date(_day(value, tz))


def _ascii(allowed: str) -> Callable[[Any, int, ZoneInfo], str]:
    pattern = re.compile(allowed)

    def fitted(value: Any, limit: int, tz: ZoneInfo) -> str:
        return "".join(pattern.findall(str(value)))[:limit]

    return fitted


FITTERS: dict[str, Callable[[Any, int, ZoneInfo], str]] = {
    "thing": _thing,
    "phrase": _phrase,
    "name": _name,
    "amount": _amount,
    "date": _date,
    "time": _time,
    "number": _ascii(r"[0-9.]"),
    "character_string": _ascii(r"[!-~]"),
    "phone_number": _ascii(r"[0-9+\-]"),
}


def fit(type_: str, value: Any, limit: int, tz: ZoneInfo) -> str:
    """A fact as its field type allows it (empty when it cannot be)."""
    try:
        return FITTERS[type_](value, limit, tz)
    except (TypeError, ValueError):
        return ""


def load_catalogue(directory: str | Path) -> Catalogue:
    """Read templates.toml from the conversations directory; TemplatesInvalid names what
    is wrong. Without the file: the generic template alone."""
    path = Path(directory) / FILE
    if not path.exists():
        return Catalogue()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise TemplatesInvalid(f"{path}: {error}") from None
    problems: list[str] = []
    limits: dict[str, int] = {}
    for name, rule in dict(data.get("types", {})).items():
        if name not in FITTERS:
            problems.append(f"[types]: unknown field type {name!r}")
        elif not isinstance(rule, dict) or not isinstance(rule.get("max"), int):
            problems.append(f"[types].{name}: needs max = a number")
        else:
            limits[name] = rule["max"]
    kinds: dict[str, Template] = {}
    for kind, spec in dict(data.get("kind", {})).items():
        fields = []
        for n, item in enumerate(spec.get("fields", []), start=1):
            where = f"[kind.{kind}] field {n}"
            type_, fact, fallback = item.get("type"), item.get("fact"), item.get("or", "")
            if type_ not in limits:
                problems.append(f"{where}: type {type_!r} is not in [types]")
            if fact not in FACTS | ALWAYS or (fallback and fallback not in FACTS | ALWAYS):
                problems.append(f"{where}: unknown fact {fact!r} or {fallback!r}")
            if not item.get("key") or not item.get("label"):
                problems.append(f"{where}: needs a key and a label")
            fields.append(
                Field(str(item.get("key")), str(type_), str(item.get("label")), str(fact), fallback)
            )
        if not fields:
            problems.append(f"[kind.{kind}]: no fields")
        kinds[kind] = Template(
            kind, str(spec.get("title", "")), tuple(fields), tuple(spec.get("serves", ()))
        )
    if GENERIC not in kinds:
        problems.append(f"[kind.{GENERIC}] is missing")
    if problems:
        raise TemplatesInvalid(f"{path}: " + "; ".join(problems))
    return Catalogue(kinds, limits)
