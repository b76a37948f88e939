"""Forgiving parsers that turn a user's typed answer into a value, or a plain Chinese hint."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, localcontext
from types import MappingProxyType
from typing import overload

from bangfu_bot.common.idnumbers import check_character
from bangfu_bot.texts import texts

__all__ = [
    "KINDS",
    "OPTION_KEYS",
    "FieldError",
    "clip_text",
    "id_birth_date",
    "mask_id",
    "mask_phone",
    "name_lead",
    "parse",
    "parse_choice",
    "parse_date",
    "parse_id_number",
    "parse_money_fen",
    "parse_name",
    "parse_number",
    "parse_phone",
    "parse_text",
    "parse_yes_no",
    "word_key",
]


class FieldError(ValueError):
    """The answer could not be used; `message` tells the user, in Chinese, what to type."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# Messages the user reads, from messages.toml: kept together so wording stays consistent.
_TEXTS = texts("bangfu_bot.common")
MSG_NUMBER = _TEXTS["number"]
MSG_NUMBER_WHOLE = _TEXTS["number_whole"]
MSG_NUMBER_NEGATIVE = _TEXTS["number_negative"]
MSG_NUMBER_TOO_BIG = _TEXTS["number_too_big"]
MSG_MONEY = _TEXTS["money"]
MSG_MONEY_NEGATIVE = _TEXTS["money_negative"]
MSG_MONEY_CENTS = _TEXTS["money_cents"]
MSG_MONEY_TOO_BIG = _TEXTS["money_too_big"]
MSG_DATE = _TEXTS["date"]
MSG_DATE_INVALID = _TEXTS["date_invalid"]
MSG_DATE_LUNAR = _TEXTS["date_lunar"]
MSG_DATE_NOT_FUTURE = _TEXTS["date_not_future"]
MSG_DATE_NOT_PAST = _TEXTS["date_not_past"]
MSG_YES_NO = _TEXTS["yes_no"]
MSG_CHOICE = _TEXTS["choice"]
MSG_PHONE = _TEXTS["phone"]
MSG_PHONE_LENGTH = _TEXTS["phone_length"]
MSG_ID_LENGTH = _TEXTS["id_length"]
MSG_ID_CHARS = _TEXTS["id_chars"]
MSG_ID_CHECKSUM = _TEXTS["id_checksum"]
MSG_ID_BIRTH = _TEXTS["id_birth"]
MSG_NAME = _TEXTS["name"]
MSG_NAME_SHORT = _TEXTS["name_short"]
MSG_NAME_LONG = _TEXTS["name_long"]
MSG_NAME_WORD = _TEXTS["name_word"]
MSG_TEXT_EMPTY = _TEXTS["text_empty"]
MSG_TEXT_SHORT = _TEXTS["text_short"]
MSG_TEXT_LONG = _TEXTS["text_long"]

# Structured answers are short; anything longer is not one of them, and refusing early keeps
# the parsers cheap on hostile input.
_MAX_FIELD_CHARS = 64
_MAX_CHOICE_CHARS = 200
# No count, age or area this bot asks about comes near this; bigger is a typo.
_NUMBER_CAP = 10**9
_MONEY_CAP_YUAN = Decimal(100_000_000)

_WHITESPACE = re.compile(r"\s+")
# Trailing sentence punctuation people add out of habit ("3500。", "是的！").
_EDGE_PUNCT = "。.,，、!！?？~～;；:：'\"“”‘’"


def _squash(text: str) -> str:
    """NFKC (full-width to half-width), lower-case, no whitespace, no edge punctuation."""
    text = unicodedata.normalize("NFKC", text).lower()
    return _WHITESPACE.sub("", text).strip(_EDGE_PUNCT)


# --- Numbers: Arabic, Chinese, and the two mixed ("3千5", "1.2万") ---------------------------

_CN_DIGITS = {
    "一": 1, "壹": 1, "二": 2, "贰": 2, "貳": 2, "两": 2, "兩": 2, "俩": 2,
    "三": 3, "叁": 3, "參": 3, "仨": 3, "四": 4, "肆": 4, "五": 5, "伍": 5,
    "六": 6, "陆": 6, "陸": 6, "七": 7, "柒": 7, "八": 8, "捌": 8, "九": 9, "玖": 9,
}  # fmt: skip
_CN_ZEROS = frozenset("零〇")
_SMALL_UNITS = {"十": 10, "拾": 10, "百": 100, "佰": 100, "千": 1000, "仟": 1000}
_BIG_UNITS = {"万": 10**4, "萬": 10**4, "亿": 10**8, "億": 10**8}
_NUMERAL_CHARS = "".join([*_CN_DIGITS, *_CN_ZEROS, *_SMALL_UNITS, *_BIG_UNITS])

# A thousands separator is only trusted when the groups are well formed ("3,500" yes, "3,5" no).
_ARABIC = re.compile(r"[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?|[0-9]+(?:\.[0-9]+)?")


@dataclass(frozen=True)
class _Amount:
    value: Decimal
    # Decimal places of a literal written without a multiplier after it ("3.500" -> 3), so money
    # can refuse "3.500" (maybe meant 3500) while allowing "1.235万".
    bare_decimals: int


def _read_numeral(text: str, *, digit_by_digit: int | None = None) -> _Amount | None:
    """Parse Arabic, Chinese or mixed numerals with no other characters; None if not one.

    `digit_by_digit` is the shortest run of unit-less Chinese digits to read positionally
    ("一九六五" is 1965); None never does, since "三五" usually means "three or five".
    """
    tokens: list[tuple[str, Decimal, int, bool]] = []  # kind, value, decimals, single digit
    i = 0
    while i < len(text):
        ch = text[i]
        match = _ARABIC.match(text, i)
        if match:
            raw = match.group().replace(",", "")
            decimals = len(raw.partition(".")[2])
            tokens.append(("num", Decimal(raw), decimals, len(raw) == 1))
            i = match.end()
            continue
        if ch in _CN_DIGITS:
            tokens.append(("num", Decimal(_CN_DIGITS[ch]), 0, True))
        elif ch in _CN_ZEROS:
            tokens.append(("zero", Decimal(0), 0, True))
        elif ch in _SMALL_UNITS:
            tokens.append(("small", Decimal(_SMALL_UNITS[ch]), 0, False))
        elif ch in _BIG_UNITS:
            tokens.append(("big", Decimal(_BIG_UNITS[ch]), 0, False))
        else:
            return None
        i += 1
    if not tokens:
        return None
    if all(kind in ("num", "zero") for kind, *_ in tokens) and len(tokens) > 1:
        all_chinese = all(ch in _CN_DIGITS or ch in _CN_ZEROS for ch in text)
        if all_chinese and digit_by_digit is not None and len(text) >= digit_by_digit:
            return _Amount(Decimal("".join(str(int(v)) for _, v, _, _ in tokens)), 0)
        return None

    with localcontext() as ctx:
        ctx.prec = 80  # inputs are length-capped; this keeps every product exact
        total = Decimal(0)
        section = Decimal(0)
        pending: Decimal | None = None
        pending_decimals = 0
        pending_single = False
        last_unit: Decimal | None = None
        small_ceiling: Decimal | None = None
        prev_kind = ""
        zero_gap = False
        wan_used = False
        for index, (kind, value, decimals, single) in enumerate(tokens):
            if kind == "num":
                if pending is not None:
                    return None
                pending, pending_decimals, pending_single = value, decimals, single
            elif kind == "zero":
                if pending is not None:
                    return None
                if len(tokens) == 1:
                    return _Amount(Decimal(0), 0)
                zero_gap = True
            elif kind == "small":
                if small_ceiling is not None and value >= small_ceiling:
                    return None
                if pending is None:
                    # "十二" means 12; other bare units ("百五") are not something people type.
                    if not (value == 10 and index == 0):
                        return None
                    pending = Decimal(1)
                elif pending >= 10:
                    return None  # "57百" or "30千" is a slip, not a way of writing a number
                section += pending * value
                small_ceiling = last_unit = value
                pending, zero_gap = None, False
            else:  # big unit
                group = section + (pending if pending is not None else 0)
                if group == 0 and not (prev_kind == "big" and value > (last_unit or 0)):
                    return None
                if value == 10**8:
                    total = (total + group) * value
                    wan_used = False
                else:
                    if wan_used:
                        return None
                    total += group * value
                    wan_used = True
                section = Decimal(0)
                last_unit, small_ceiling = value, None
                pending, zero_gap = None, False
            prev_kind = kind
        bare_decimals = 0
        if pending is not None:
            if last_unit is None:
                section += pending
                bare_decimals = pending_decimals
            elif pending_decimals:
                return None  # "1万2.5" has no clear meaning
            elif pending_single and not zero_gap and last_unit >= 100:
                # Colloquial shorthand: "三千五" is 3500, "一万二" is 12000.
                section += pending * last_unit / 10
            elif pending < (small_ceiling or last_unit):
                section += pending  # "二十五", "一百零五", "1万2000"
            else:
                return None
        return _Amount(total + section, bare_decimals)


def _int_numeral(text: str, *, digit_by_digit: int | None = None) -> int | None:
    """A whole number written in Arabic or Chinese numerals, else None."""
    amount = _read_numeral(text, digit_by_digit=digit_by_digit)
    if amount is None or amount.value != amount.value.to_integral_value():
        return None
    return int(amount.value)


def _strip_affixes(text: str, prefixes: tuple[str, ...], suffixes: tuple[str, ...]) -> str:
    # Longest first so "一共" is removed whole rather than leaving a stray "一".
    for prefix in sorted(prefixes, key=len, reverse=True):
        if text.startswith(prefix) and len(text) > len(prefix):
            text = text[len(prefix) :]
            break
    for suffix in sorted(suffixes, key=len, reverse=True):
        if text.endswith(suffix) and len(text) > len(suffix):
            text = text[: -len(suffix)]
            break
    return text


def _range_message(
    minimum: object, maximum: object, *, unit: str = " ", noun: str = "number"
) -> str:
    noun = _TEXTS[f"noun_{noun}"]
    if minimum is not None and maximum is not None:
        return _TEXTS["range_between"].format(
            minimum=minimum, maximum=maximum, unit=unit, noun=noun
        )
    if minimum is not None:
        return _TEXTS["range_at_least"].format(minimum=minimum, unit=unit, noun=noun)
    return _TEXTS["range_at_most"].format(maximum=maximum, unit=unit, noun=noun)


_NEGATIVE_SIGNS = ("-", "−", "负")
_NUMBER_PREFIXES = ("一共", "总共", "共", "有", "大约", "大概", "约")
_NUMBER_SUFFIXES = (
    "个", "人", "口", "口人", "个人", "位", "名", "岁", "周岁", "次", "户", "间", "头", "只",
    "亩", "天", "年", "个月", "张", "件", "套", "左右",
)  # fmt: skip


def parse_number(text: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """Parse a whole number such as "3", "３", "三", "二十五" or "3 口人"."""
    squashed = _squash(text)
    if not squashed or len(squashed) > _MAX_FIELD_CHARS:
        raise FieldError(MSG_NUMBER)
    squashed = _strip_affixes(squashed, _NUMBER_PREFIXES, _NUMBER_SUFFIXES)
    negative = squashed.startswith(_NEGATIVE_SIGNS)
    if negative:
        squashed = squashed[1:]
    # Three or more bare Chinese digits are a year or code said digit by digit ("一九六五").
    amount = _read_numeral(squashed, digit_by_digit=3)
    if amount is None:
        raise FieldError(MSG_NUMBER)
    if amount.value != amount.value.to_integral_value():
        raise FieldError(MSG_NUMBER_WHOLE)
    number = -int(amount.value) if negative else int(amount.value)
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        raise FieldError(_range_message(minimum, maximum))
    if maximum is None and number > _NUMBER_CAP:
        raise FieldError(MSG_NUMBER_TOO_BIG)
    if number < 0 and minimum is None:
        # Nothing this bot counts can be negative; a caller wanting that sets a minimum.
        raise FieldError(MSG_NUMBER_NEGATIVE)
    return number


# --- Money ---------------------------------------------------------------------------------

_MONEY_PREFIXES = ("¥", "人民币", "rmb", "一共", "总共", "共")
_MONEY_SUFFIXES = ("整", "钱", "左右")
_YUAN_MARKS = "元块圆"
_DIGIT_CLASS = "0-9" + "".join(_CN_DIGITS)
_SMALL_CHANGE = re.compile(
    rf"^[零〇]?(?:(?P<jiao>[{_DIGIT_CLASS}])[角毛])?[零〇]?(?:(?P<fen>[{_DIGIT_CLASS}])分)?$"
)
_BARE_JIAO = re.compile(rf"^(?P<jiao>[{_DIGIT_CLASS}])$")  # "3块5" is 3.50 yuan


def _digit(ch: str | None) -> int:
    if not ch:
        return 0
    return int(ch) if ch.isascii() else _CN_DIGITS[ch]


def _yuan_text(fen: int) -> str:
    yuan, cents = divmod(fen, 100)
    return f"{yuan}" if cents == 0 else f"{yuan}.{cents:02d}".rstrip("0")


def parse_money_fen(
    text: str, *, minimum_fen: int | None = None, maximum_fen: int | None = None
) -> int:
    """Parse an amount in yuan ("3500元", "3千5", "1.2万") and return whole fen."""
    squashed = _squash(text)
    if not squashed or len(squashed) > _MAX_FIELD_CHARS:
        raise FieldError(MSG_MONEY)
    squashed = _strip_affixes(squashed, _MONEY_PREFIXES, _MONEY_SUFFIXES)
    squashed = _strip_affixes(squashed, ("¥",), ("钱",))  # "¥3500元整", "3500块钱整"
    if squashed.startswith(_NEGATIVE_SIGNS):
        if _read_numeral(squashed[1:].rstrip(_YUAN_MARKS)) is not None:
            raise FieldError(MSG_MONEY_NEGATIVE)
        raise FieldError(MSG_MONEY)

    yuan_part, change_part = squashed, ""
    marks = [i for i, ch in enumerate(squashed) if ch in _YUAN_MARKS]
    if len(marks) > 1:
        raise FieldError(MSG_MONEY)
    if marks:
        yuan_part, change_part = squashed[: marks[0]], squashed[marks[0] + 1 :]
    elif squashed[-1] in "角毛分":
        yuan_part, change_part = "0", squashed  # "5毛"

    amount = _read_numeral(yuan_part)
    if amount is None:
        raise FieldError(MSG_MONEY)
    jiao = fen = 0
    if change_part:
        change = _BARE_JIAO.match(change_part) or _SMALL_CHANGE.match(change_part)
        if change is None or amount.value != amount.value.to_integral_value():
            raise FieldError(MSG_MONEY)
        groups = change.groupdict()
        jiao, fen = _digit(groups.get("jiao")), _digit(groups.get("fen"))
    if amount.bare_decimals > 2:
        raise FieldError(MSG_MONEY_CENTS)
    if amount.value > _MONEY_CAP_YUAN:
        raise FieldError(MSG_MONEY_TOO_BIG)
    with localcontext() as ctx:
        ctx.prec = 40
        total = amount.value * 100 + jiao * 10 + fen
    if total != total.to_integral_value():
        raise FieldError(MSG_MONEY_CENTS)
    result = int(total)
    if result > _MONEY_CAP_YUAN * 100:
        raise FieldError(MSG_MONEY_TOO_BIG)
    if (minimum_fen is not None and result < minimum_fen) or (
        maximum_fen is not None and result > maximum_fen
    ):
        low = None if minimum_fen is None else _yuan_text(minimum_fen)
        high = None if maximum_fen is None else _yuan_text(maximum_fen)
        raise FieldError(_range_message(low, high, unit=_TEXTS["unit_yuan"], noun="money"))
    return result


# --- Dates ---------------------------------------------------------------------------------

_RELATIVE_DAYS = {
    "今天": 0, "今日": 0, "昨天": -1, "昨日": -1, "前天": -2, "大前天": -3,
    "明天": 1, "明日": 1, "后天": 2, "大后天": 3,
}  # fmt: skip
_CN_DATE_NUM = f"[0-9{_NUMERAL_CHARS}]{{1,4}}"
_DATE_COMPACT = re.compile(r"^(?P<y>[0-9]{4})(?P<m>[0-9]{2})(?P<d>[0-9]{2})$")
_DATE_SEPARATED = re.compile(
    r"^(?P<y>[0-9]{4})[-/.](?P<m>[0-9]{1,2})[-/.](?P<d>[0-9]{1,2})(?:日|号)?$"
)
_DATE_CHINESE = re.compile(
    rf"^(?:(?P<y>{_CN_DATE_NUM})年)?(?P<m>{_CN_DATE_NUM})月(?P<d>{_CN_DATE_NUM})(?:日|号)?$"
)
_DATE_SHORT = re.compile(r"^(?P<m>[0-9]{1,2})[-/.](?P<d>[0-9]{1,2})(?:日|号)?$")
_CALENDAR_PREFIXES = ("公历", "阳历", "新历")
# Many older villagers count in the lunar calendar; converting needs tables, so ask instead.
# stays in Python: words people type, which the date parser matches
_LUNAR = re.compile("农历|阴历|旧历|正月|腊月|冬月|初[一二三四五六七八九十]")


def parse_date(
    text: str, *, today: date, allow_future: bool = True, allow_past: bool = True
) -> date:
    """Parse a date such as "2026-03-01", "2026年3月1日", "3月1日" or "昨天"."""
    squashed = _squash(text)
    hint = MSG_DATE.format(year=today.year)
    if not squashed or len(squashed) > _MAX_FIELD_CHARS:
        raise FieldError(hint)
    if _LUNAR.search(squashed):
        raise FieldError(MSG_DATE_LUNAR.format(year=today.year))
    squashed = _strip_affixes(squashed, _CALENDAR_PREFIXES, ())

    if squashed in _RELATIVE_DAYS:
        result = today + timedelta(days=_RELATIVE_DAYS[squashed])
    else:
        match = (
            _DATE_COMPACT.match(squashed)
            or _DATE_SEPARATED.match(squashed)
            or _DATE_CHINESE.match(squashed)
            or _DATE_SHORT.match(squashed)
        )
        if match is None:
            raise FieldError(hint)
        parts = match.groupdict()
        year_text = parts.get("y")
        month, day = _int_numeral(parts["m"]), _int_numeral(parts["d"])
        year = None if year_text is None else _int_numeral(year_text, digit_by_digit=2)
        if month is None or day is None or (year_text is not None and year is None):
            raise FieldError(hint)
        invalid = FieldError(MSG_DATE_INVALID.format(year=today.year))
        if year is not None and year_text is not None and len(year_text) == 2:
            # "65年" is far more likely 1965 than 2065 for people born or struggling back then.
            year += today.year // 100 * 100
            if year > today.year:
                year -= 100
        if year is None:
            # No year given: this year, unless that lands on the forbidden side of today.
            try:
                result = date(today.year, month, day)
                if not allow_future and result > today:
                    result = date(today.year - 1, month, day)
                elif not allow_past and result < today:
                    result = date(today.year + 1, month, day)
            except ValueError:
                raise invalid from None
        else:
            if not 1900 <= year <= today.year + 100:
                raise invalid
            try:
                result = date(year, month, day)
            except ValueError:
                raise invalid from None
    if not allow_future and result > today:
        raise FieldError(MSG_DATE_NOT_FUTURE)
    if not allow_past and result < today:
        raise FieldError(MSG_DATE_NOT_PAST)
    return result


# --- Yes / no ------------------------------------------------------------------------------

_YES = frozenset(
    ["是", "对", "好", "行", "可以", "确认", "确定", "同意", "有", "要", "需要", "嗯", "恩",
     "1", "y", "yes", "ok", "okay", "✓", "✔", "☑", "✅", "👍", "👌", "[强]", "[ok]"]
)  # fmt: skip
_NO = frozenset(
    ["否", "不", "不是", "不对", "没有", "没", "无", "不要", "不需要", "不用", "不同意", "不行",
     "不可以", "2", "n", "no", "✗", "✘", "❌", "✖", "×", "👎", "[弱]"]
)  # fmt: skip
# Particles that soften an answer without changing it ("是的", "好吧", "没有了").
# stays in Python: characters people type, which the yes/no parser strips
_PARTICLES = "的啊呀吧呢了哦噢喔哈嘛滴呐"
# Variation selectors and skin-tone modifiers that ride along with emoji.
_EMOJI_MODIFIERS = re.compile("[\ufe0e\ufe0f\U0001f3fb-\U0001f3ff]")


def parse_yes_no(text: str) -> bool:
    """Parse a yes/no answer such as "是的", "1", "不需要" or "2"."""
    squashed = _EMOJI_MODIFIERS.sub("", _squash(text))
    if len(squashed) > _MAX_FIELD_CHARS:
        raise FieldError(MSG_YES_NO)
    squashed = squashed.rstrip(_PARTICLES + _EDGE_PUNCT)
    # "对对对", "嗯嗯", "好好好" say the same thing more warmly.
    if len(squashed) > 1 and len(set(squashed)) == 1:
        squashed = squashed[0]
    if squashed in _YES:
        return True
    if squashed in _NO:
        return False
    raise FieldError(MSG_YES_NO)


def word_key(text: str) -> str:
    """A short answer reduced for comparing with a list of words: NFKC, lower case, no
    spaces, no edge punctuation, no trailing particles ("没有了。" -> "没有")."""
    squashed = _EMOJI_MODIFIERS.sub("", _squash(text))
    return squashed.rstrip(_PARTICLES + _EDGE_PUNCT)


# --- Choices -------------------------------------------------------------------------------

_CHOICE_NUMBER = re.compile(
    rf"^(?:我选|选择|选)?第?(?P<n>[0-9]{{1,3}}|[{_NUMERAL_CHARS}]{{1,4}})"
    r"(?:个选项|个|项|号|条|种)?$"
)


def _choice_key(text: str) -> str:
    # Compare on content only: width, case, spaces and punctuation must not block a match.
    text = unicodedata.normalize("NFKC", text).casefold()
    return "".join(
        ch for ch in text if not ch.isspace() and unicodedata.category(ch)[0] not in "PS"
    )


def parse_choice(
    text: str, choices: list[str], synonyms: Mapping[str, list[str]] | None = None
) -> int:
    """Return the 0-based index of the choice the user picked, by number or by text.

    `synonyms` maps a choice to other words people use for it (老伴 for 配偶, 养猪 for
    生猪养殖); a flow file declares them. They match like the choice's own text does.
    """
    if not choices:
        raise ValueError("parse_choice needs at least one choice")
    if len(text) > _MAX_CHOICE_CHARS:
        raise FieldError(MSG_CHOICE)
    key = _choice_key(text)
    if not key:
        raise FieldError(MSG_CHOICE)
    # Every word that names a choice: the choice itself first, then its synonyms.
    words: list[tuple[str, int]] = [(_choice_key(choice), i) for i, choice in enumerate(choices)]
    for i, choice in enumerate(choices):
        words.extend((_choice_key(word), i) for word in (synonyms or {}).get(choice, []))
    words = [(word, i) for word, i in words if word]
    exact = {i for word, i in words if word == key}
    if len(exact) == 1:
        return exact.pop()

    number: int | None = None
    bare = _squash(text).strip("()[]【】<>《》")
    match = _CHOICE_NUMBER.match(bare)
    if match:
        number = _int_numeral(match.group("n"))
        if number is not None and 1 <= number <= len(choices):
            return number - 1

    contained = [(word, i) for word, i in words if word in key]
    if len({i for _, i in contained}) > 1:
        # "我不需要" contains both "需要" and "不需要"; "儿媳妇" both "媳妇" and "儿媳妇": the
        # longer word that holds the others wins.
        covering = [
            (word, i) for word, i in contained if all(other in word for other, _ in contained)
        ]
        contained = covering if len({i for _, i in covering}) == 1 else contained
    if len({i for _, i in contained}) == 1:
        return contained[0][1]
    if not contained:
        inside = {i for word, i in words[: len(choices)] if key in word}
        if len(inside) == 1:
            return inside.pop()
    if number is not None:
        raise FieldError(_range_message(1, len(choices)))
    raise FieldError(MSG_CHOICE)


# --- Phones --------------------------------------------------------------------------------

_PHONE_SEPARATORS = re.compile(r"[\s\-‐‑‒–—―()（）.·]")
_PHONE_LABEL = re.compile(r"^[\u3400-\u9fff:：]{0,10}")
_MOBILE = re.compile(r"^1[3-9][0-9]{9}$")
# Area code (3-4 digits from 0) plus a 7-8 digit local number; digits are all we keep.
_LANDLINE = re.compile(r"^0[1-9][0-9]{8,10}$")


def parse_phone(text: str) -> str:
    """Parse a mainland mobile (or landline) number and return its digits only."""
    if len(text) > _MAX_FIELD_CHARS:
        raise FieldError(MSG_PHONE)
    normalised = unicodedata.normalize("NFKC", text).strip().rstrip(_EDGE_PUNCT)
    # A short Chinese label is harmless ("手机：138..."); Latin letters or symbols are not.
    normalised = _PHONE_LABEL.sub("", normalised)
    digits = _PHONE_SEPARATORS.sub("", normalised)
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("0086"):
        digits = digits[4:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    if not digits.isascii() or not digits.isdigit():
        raise FieldError(MSG_PHONE)
    if _MOBILE.match(digits):
        return digits
    if _LANDLINE.match(digits):
        return digits
    if digits.startswith("1") and len(digits) != 11:
        raise FieldError(MSG_PHONE_LENGTH.format(count=len(digits)))
    raise FieldError(MSG_PHONE)


def mask_phone(phone: str) -> str:
    """Hide the middle of a phone number for logs, e.g. "138****5678"."""
    if len(phone) < 8:
        return "*" * len(phone)
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]


# --- Resident ID numbers -------------------------------------------------------------------

_ID_SEPARATORS = re.compile(r"[\s\-‐‑‒–—―]")


def id_birth_date(id_number: str) -> date:
    """The birth date encoded in an 18-character resident ID number."""
    try:
        return date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))
    except ValueError:
        raise FieldError(MSG_ID_BIRTH) from None


def parse_id_number(text: str, *, today: date | None = None) -> str:
    """Parse an 18-character resident ID number, checking its checksum and birth date."""
    if len(text) > _MAX_FIELD_CHARS:
        raise FieldError(MSG_ID_LENGTH)
    normalised = _ID_SEPARATORS.sub("", unicodedata.normalize("NFKC", text)).upper()
    normalised = normalised.strip(_EDGE_PUNCT)
    if len(normalised) != 18:
        raise FieldError(MSG_ID_LENGTH)
    first17, last = normalised[:17], normalised[17]
    if not (first17.isascii() and first17.isdigit()) or last not in "0123456789X":
        raise FieldError(MSG_ID_CHARS)
    if check_character(first17) != last:
        raise FieldError(MSG_ID_CHECKSUM)
    born = id_birth_date(normalised)
    if born.year < 1900 or (today is not None and born > today):
        raise FieldError(MSG_ID_BIRTH)
    return normalised


def mask_id(id_number: str) -> str:
    """Hide an ID number for logs, keeping the first 3 and last 2 characters."""
    if len(id_number) < 8:
        return "*" * len(id_number)
    return id_number[:3] + "*" * (len(id_number) - 5) + id_number[-2:]


# --- Names ---------------------------------------------------------------------------------

# Dots people type between the parts of a transliterated name (阿卜杜拉·买买提).
_NAME_DOTS = re.compile("[·•．・･‧∙⋅.。]")
_NAME_EDGE = "。.,，、!！?？~～ "


def _is_ideograph(ch: str) -> bool:
    code = ord(ch)
    return (
        0x3400 <= code <= 0x4DBF  # Extension A
        or 0x4E00 <= code <= 0x9FFF  # Unified Ideographs
        or 0xF900 <= code <= 0xFAFF  # Compatibility Ideographs
        # Planes 2 and 3 are set aside for ideographs (Extensions B-I and beyond), so
        # accepting them whole keeps names valid as Unicode adds rare characters.
        or 0x20000 <= code <= 0x3FFFF
    )


# stays in Python: words people type, which are answers but never a person's name
_NOT_NAMES = frozenset(
    {
        "没有",
        "没有人",
        "没人",
        "不知道",
        "不清楚",
        "不晓得",
        "不记得",
        "忘了",
        "跳过",
        "不用",
        "不要",
        "不是",
        "可以",
        "知道",
        "谢谢",
        "生病",
        "有病",
        "病了",
        "看病",
        "住院",
        "残疾",
        "打工",
        "种地",
        "务农",
        "在家",
        "下岗",
        "困难",
        "自己",
        "本人",
        "一个人",
        "就我一个",
        "就我一个人",
        "只有我",
        "老伴",
        "爱人",
        "配偶",
        "儿子",
        "女儿",
        "孙子",
        "孙女",
        "父亲",
        "母亲",
        "其他",
        "其它",
        "同意",
        "确认",
        "取消",
        "返回",
        "继续",
        "帮助",
        "人工",
        "菜单",
        "申请",
        "绑定",
        "好了",
        "完了",
        "就这些",
    }
)
# stays in Python: characters people type around a name but that no name is written with
_NOT_NAME_CHARS = frozenset("我你您他她它的吗呢吧啊呀哦嘛")
# stays in Python: what people type before their name ("我叫王琼翠", "名字是王琼翠")
_NAME_LEADS = re.compile(
    r"^(?:(?:我|本人|他|她|这位)?(?:的)?(?:名字|姓名)?(?:叫做|叫|是)|(?:名字|姓名)[:：]?)"
)
# A lead of at most this many characters before 叫 ("老伴叫李长贵", "我儿子叫王小军").
_LEAD_MAX = 4


def _squeeze_name(text: str) -> str:
    # No NFKC here: it would rewrite rare or compatibility ideographs that a real name uses.
    name = _WHITESPACE.sub("", text).strip(_NAME_EDGE)
    return _NAME_DOTS.sub("·", name)


def _name_shape(name: str) -> str | None:
    """Why `name` is not shaped like a name (a message), or None if it is."""
    parts = name.split("·")
    if not all(part and all(_is_ideograph(ch) for ch in part) for part in parts):
        return MSG_NAME
    if len(name) < 2:
        return MSG_NAME_SHORT
    if len(name) > 20:
        return MSG_NAME_LONG
    return None


def name_lead(text: str) -> tuple[str, str]:
    """Split "老伴叫李长贵" into ("老伴", "李长贵"); ("", text) when nothing leads the name.

    Only a short lead ending in 叫 or 是, or a label (姓名：) is split off, and only when what
    follows is shaped like a name; the lead itself is returned as typed.
    """
    if len(text) > _MAX_FIELD_CHARS:
        return "", text
    squeezed = _squeeze_name(text)
    match = _NAME_LEADS.match(squeezed)
    if match and len(squeezed) > match.end():
        rest = squeezed[match.end() :].lstrip(":：")
        if _name_shape(rest) is None:
            return squeezed[: match.end()], rest
    for marker in ("叫做", "叫"):
        head, found, rest = squeezed.partition(marker)
        rest = rest.lstrip(":：")
        if found and 0 < len(head) <= _LEAD_MAX and _name_shape(rest) is None:
            return head, rest
    return "", text


def parse_name(text: str) -> str:
    """Parse a Chinese personal name of 2-20 characters, e.g. "王小明" or "阿卜杜拉·买买提".

    What people say around it goes ("我叫王琼翠", "老伴叫李长贵"); a common word that is an
    answer but not a name ("没有", "生病", "不知道") is refused with a hint.
    """
    if len(text) > _MAX_FIELD_CHARS:
        raise FieldError(MSG_NAME)
    _, said = name_lead(text)
    name = _squeeze_name(said)
    problem = _name_shape(name)
    if problem is not None:
        raise FieldError(problem)
    if name in _NOT_NAMES or _NOT_NAME_CHARS & set(name):
        raise FieldError(MSG_NAME_WORD.format(word=name))
    return name


# --- Free text -----------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Where a sentence ends, and (second best) where a clause ends, for keeping a long answer.
_SENTENCE_ENDS = "。！？!?；;…"
_CLAUSE_ENDS = "，,、：: "


def _clean_text(text: str) -> str:
    # No NFKC: Chinese full-width punctuation is what the reader expects to see.
    return _WHITESPACE.sub(" ", _CONTROL.sub("", text)).strip()


def parse_text(text: str, *, max_length: int = 200, min_length: int = 1) -> str:
    """Free text, trimmed, with runs of whitespace collapsed to one space."""
    cleaned = _clean_text(text)
    if not cleaned:
        raise FieldError(MSG_TEXT_EMPTY)
    if len(cleaned) > max_length:
        raise FieldError(MSG_TEXT_LONG.format(max_length=max_length))
    if len(cleaned) < min_length:
        raise FieldError(MSG_TEXT_SHORT.format(min_length=min_length))
    return cleaned


def clause(text: str) -> str:
    """What someone typed, set inside one of our sentences ("没有批准：{reason}。"): its own
    closing stop goes, or the member reads "。。"."""
    return text.rstrip(_SENTENCE_ENDS + " ")


def clip_text(text: str, max_length: int) -> tuple[str, str]:
    """Keep what fits of a long free-text answer: (kept, cut).

    The cut falls after the last sentence end within `max_length` characters, or failing
    one in the second half, the last clause end, or failing that at `max_length` itself, so
    what is kept reads as whole sentences wherever the writer made them.
    """
    cleaned = _clean_text(text)
    if len(cleaned) <= max_length:
        return cleaned, ""
    window = cleaned[:max_length]
    at = max_length
    for ends in (_SENTENCE_ENDS, _CLAUSE_ENDS):
        found = max(window.rfind(ch) for ch in ends)
        if found + 1 >= max_length // 2:
            at = found + 1
            break
    kept, cut = cleaned[:at].rstrip(_CLAUSE_ENDS.strip() + " "), cleaned[at:].strip()
    return kept or cleaned[:max_length], cut


# --- Dispatch for the TOML-driven engine ---------------------------------------------------

KINDS = frozenset(
    {"number", "money", "date", "yes_no", "choice", "phone", "id_number", "name", "text"}
)

# Which options each kind takes, so a flow loader can reject a misplaced key before runtime.
OPTION_KEYS: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "number": frozenset({"min", "max"}),
        "money": frozenset({"min_yuan", "max_yuan"}),
        "date": frozenset({"allow_future", "allow_past"}),
        "yes_no": frozenset(),
        "choice": frozenset({"choices", "synonyms"}),
        "phone": frozenset(),
        "id_number": frozenset(),
        "name": frozenset(),
        "text": frozenset({"max_length", "min_length"}),
    }
)


def _yuan_option_to_fen(value: object, key: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise ValueError(f"option {key!r} must be a number of yuan, got {value!r}")
    # str() first so a TOML float like 0.1 becomes exactly 0.1, not its binary neighbour.
    try:
        fen = Decimal(str(value)) * 100
    except ArithmeticError:
        raise ValueError(f"option {key!r} must be a number of yuan, got {value!r}") from None
    if not fen.is_finite() or fen != fen.to_integral_value():
        raise ValueError(f"option {key!r} must be yuan with at most two decimals: {value!r}")
    return int(fen)


@overload
def _int_option(options: dict[str, object], key: str) -> int | None: ...


@overload
def _int_option(options: dict[str, object], key: str, *, default: int) -> int: ...


def _int_option(options: dict[str, object], key: str, *, default: int | None = None) -> int | None:
    value = options.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"option {key!r} must be an integer, got {value!r}")
    return value


def parse(kind: str, text: str, *, options: dict[str, object], today: date) -> object:
    """Parse `text` as the field `kind`, configured by `options` from the dialogue TOML."""
    if kind not in KINDS:
        raise ValueError(f"unknown field kind {kind!r}; expected one of {sorted(KINDS)}")
    unknown = set(options) - OPTION_KEYS[kind]
    if unknown:
        # A typo in the dialogue TOML should fail loudly, not be silently ignored.
        raise ValueError(f"unknown option(s) {sorted(unknown)} for field kind {kind!r}")
    parsers: dict[str, Callable[[], object]] = {
        "number": lambda: parse_number(
            text, minimum=_int_option(options, "min"), maximum=_int_option(options, "max")
        ),
        "money": lambda: parse_money_fen(
            text,
            minimum_fen=_yuan_option_to_fen(options.get("min_yuan"), "min_yuan"),
            maximum_fen=_yuan_option_to_fen(options.get("max_yuan"), "max_yuan"),
        ),
        "date": lambda: parse_date(
            text,
            today=today,
            allow_future=bool(options.get("allow_future", True)),
            allow_past=bool(options.get("allow_past", True)),
        ),
        "yes_no": lambda: parse_yes_no(text),
        "choice": lambda: parse_choice(text, _choices_option(options), _synonyms_option(options)),
        "phone": lambda: parse_phone(text),
        "id_number": lambda: parse_id_number(text, today=today),
        "name": lambda: parse_name(text),
        "text": lambda: parse_text(
            text,
            max_length=_int_option(options, "max_length", default=200),
            min_length=_int_option(options, "min_length", default=1),
        ),
    }
    return parsers[kind]()


def _choices_option(options: dict[str, object]) -> list[str]:
    choices = options.get("choices")
    if not isinstance(choices, list) or not choices or not all(isinstance(c, str) for c in choices):
        raise ValueError(f"option 'choices' must be a non-empty list of strings, got {choices!r}")
    return choices


def _synonyms_option(options: dict[str, object]) -> dict[str, list[str]]:
    synonyms = options.get("synonyms") or {}
    if not isinstance(synonyms, dict) or not all(
        isinstance(words, list) and all(isinstance(w, str) for w in words)
        for words in synonyms.values()
    ):
        raise ValueError(f"option 'synonyms' must map choices to lists of words, got {synonyms!r}")
    return synonyms
