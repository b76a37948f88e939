"""Forgiving answer parsers: what users type on phones, and what they are told when it fails."""

from __future__ import annotations

from datetime import date

import pytest

from bangfu_bot.common.fields import (
    KINDS,
    OPTION_KEYS,
    FieldError,
    clause,
    clip_text,
    id_birth_date,
    mask_id,
    mask_phone,
    name_lead,
    parse,
    parse_choice,
    parse_date,
    parse_id_number,
    parse_money_fen,
    parse_name,
    parse_number,
    parse_phone,
    parse_text,
    parse_yes_no,
    word_key,
)

TODAY = date(2026, 5, 10)

# Inputs no structured parser should accept.
HOSTILE = [
    "",
    "   ",
    "👍",
    "🙂3500",
    "x" * 2000,
    "3" * 2000,
    "'; DROP TABLE users; --",
    "1 OR 1=1",
    "<script>alert(1)</script>",
    "\x00\x01",
]


def make_id(first17: str) -> str:
    """Append the ISO 7064 MOD 11-2 check character, computed independently of the module."""
    weights = [2 ** (17 - i) % 11 for i in range(17)]
    remainder = sum(int(d) * w for d, w in zip(first17, weights, strict=True)) % 11
    return first17 + "10X98765432"[remainder]


VALID_ID = make_id("52010219800101123")
VALID_ID_X = "11010519491231002X"  # widely published sample with an X check character


def bad_check(id_number: str) -> str:
    """The same number with a wrong last character."""
    wrong = next(c for c in "0123456789X" if c != id_number[-1])
    return id_number[:-1] + wrong


def assert_chinese_hint(error: FieldError) -> None:
    """A user-facing message is short, Chinese and ends like a sentence."""
    assert error.message == str(error)
    assert 0 < len(error.message) <= 40
    assert error.message.endswith("。")
    assert any("\u4e00" <= ch <= "\u9fff" for ch in error.message)


# --- parse_number --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3", 3),
        ("３", 3),
        (" 3 ", 3),
        ("三", 3),
        ("两", 2),
        ("十", 10),
        ("十二", 12),
        ("二十五", 25),
        ("一百零五", 105),
        ("一百一", 110),
        ("两百五", 250),
        ("3个", 3),
        ("3人", 3),
        ("3 口人", 3),
        ("３口人", 3),
        ("三口人", 3),
        ("一共3个人", 3),
        ("0", 0),
        ("零", 0),
        ("3.0", 3),
        ("3。", 3),
        ("1,000", 1000),
        ("二〇二六", 2026),
        ("一九六五", 1965),
        ("1.5千", 1500),
        ("1万", 10000),
    ],
)
def test_parse_number_accepts(text: str, expected: int) -> None:
    assert parse_number(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("3.5", "请回复整数，比如 3。"),
        ("-3", "不能是负数，请回复一个数字，比如 3。"),
        ("负三", "不能是负数，请回复一个数字，比如 3。"),
        ("99999999999999999999", "这个数太大了，请再看一下。"),
        ("三五", "请回复一个数字，比如 3。"),
        ("57百", "请回复一个数字，比如 3。"),
        ("2零26", "请回复一个数字，比如 3。"),
        ("3 5 7 x", "请回复一个数字，比如 3。"),
        ("3,5", "请回复一个数字，比如 3。"),
        ("几个", "请回复一个数字，比如 3。"),
        ("٣", "请回复一个数字，比如 3。"),
        *[(text, "请回复一个数字，比如 3。") for text in HOSTILE],
    ],
)
def test_parse_number_rejects(text: str, message: str) -> None:
    with pytest.raises(FieldError) as caught:
        parse_number(text)
    assert caught.value.message == message
    assert_chinese_hint(caught.value)


@pytest.mark.parametrize(
    ("text", "minimum", "maximum", "message"),
    [
        ("21", 1, 20, "请回复 1 到 20 之间的数字。"),
        ("0", 1, 20, "请回复 1 到 20 之间的数字。"),
        ("-3", 1, 20, "请回复 1 到 20 之间的数字。"),
        ("99999999999999999999", 1, 20, "请回复 1 到 20 之间的数字。"),
        ("0", 1, None, "请回复不小于 1 的数字。"),
        ("200", None, 150, "请回复不大于 150 的数字。"),
    ],
)
def test_parse_number_range(
    text: str, minimum: int | None, maximum: int | None, message: str
) -> None:
    with pytest.raises(FieldError) as caught:
        parse_number(text, minimum=minimum, maximum=maximum)
    assert caught.value.message == message


def test_parse_number_range_bounds_inclusive_and_negative_allowed_when_asked() -> None:
    assert parse_number("1", minimum=1, maximum=20) == 1
    assert parse_number("二十", minimum=1, maximum=20) == 20
    assert parse_number("-3", minimum=-5) == -3


# --- parse_money_fen -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fen"),
    [
        ("3500", 350000),
        ("3500元", 350000),
        ("3500块", 350000),
        ("3500块钱", 350000),
        ("3500元整", 350000),
        ("3千5", 350000),
        ("3千", 300000),
        ("三千五百", 350000),
        ("三千五", 350000),
        ("三千五百元整", 350000),
        ("3,500.00", 350000),
        ("3，500", 350000),
        ("３５００", 350000),
        ("3 500", 350000),
        ("3500.5", 350050),
        ("3500.50元", 350050),
        ("0.5元", 50),
        ("1万", 1000000),
        ("1.2万", 1200000),
        ("1万2000", 1200000),
        ("一万二", 1200000),
        ("两千", 200000),
        ("￥3500", 350000),
        ("¥3500", 350000),
        ("人民币3500元", 350000),
        ("3块5", 350),
        ("3元5角6分", 356),
        ("5毛", 50),
        ("0", 0),
        ("100000000", 10_000_000_000),
    ],
)
def test_parse_money_accepts(text: str, fen: int) -> None:
    result = parse_money_fen(text)
    assert result == fen
    assert type(result) is int


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("-3500", "金额不能是负数，请回复金额，比如 3500。"),
        ("-3500元", "金额不能是负数，请回复金额，比如 3500。"),
        ("3500.555", "金额最多写到分，比如 3500.50。"),
        ("3.500", "金额最多写到分，比如 3500.50。"),
        ("1.2345678万", "金额最多写到分，比如 3500.50。"),
        ("100000000.01", "金额太大了，请再看一下。"),
        ("2亿", "金额太大了，请再看一下。"),
        ("99999999999999999999", "金额太大了，请再看一下。"),
        ("三千多", "请回复金额，比如 3500。"),
        ("3500元5000元", "请回复金额，比如 3500。"),
        ("3.5元5角", "请回复金额，比如 3500。"),
        ("3,5", "请回复金额，比如 3500。"),
        ("30千", "请回复金额，比如 3500。"),
        ("一零五", "请回复金额，比如 3500。"),
        ("1e5", "请回复金额，比如 3500。"),
        ("NaN", "请回复金额，比如 3500。"),
        *[(text, "请回复金额，比如 3500。") for text in HOSTILE],
    ],
)
def test_parse_money_rejects(text: str, message: str) -> None:
    with pytest.raises(FieldError) as caught:
        parse_money_fen(text)
    assert caught.value.message == message
    assert_chinese_hint(caught.value)


def test_parse_money_range_messages_are_in_yuan() -> None:
    with pytest.raises(FieldError) as caught:
        parse_money_fen("6000", minimum_fen=0, maximum_fen=500_000)
    assert caught.value.message == "请回复 0 到 5000 元之间的金额。"
    with pytest.raises(FieldError) as caught:
        parse_money_fen("0.1", minimum_fen=50)
    assert caught.value.message == "请回复不小于 0.5 元的金额。"
    assert parse_money_fen("5000", maximum_fen=500_000) == 500_000


# --- parse_date ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-01", date(2026, 3, 1)),
        ("2026/3/1", date(2026, 3, 1)),
        ("2026.3.1", date(2026, 3, 1)),
        ("2026年3月1日", date(2026, 3, 1)),
        ("2026年3月1号", date(2026, 3, 1)),
        ("2026 年 3 月 1 日", date(2026, 3, 1)),
        ("２０２６年３月１日", date(2026, 3, 1)),
        ("二〇二六年三月一日", date(2026, 3, 1)),
        ("20260301", date(2026, 3, 1)),
        ("3月1日", date(2026, 3, 1)),
        ("三月一号", date(2026, 3, 1)),
        ("十二月三十一日", date(2026, 12, 31)),
        ("3-1", date(2026, 3, 1)),
        ("3/1", date(2026, 3, 1)),
        ("公历3月1日", date(2026, 3, 1)),
        ("65年3月1日", date(1965, 3, 1)),
        ("一九六五年三月一日", date(1965, 3, 1)),
        ("六五年三月一日", date(1965, 3, 1)),
        ("今天", TODAY),
        ("昨天", date(2026, 5, 9)),
        ("前天", date(2026, 5, 8)),
        ("明天", date(2026, 5, 11)),
        ("2024年2月29日", date(2024, 2, 29)),
    ],
)
def test_parse_date_accepts(text: str, expected: date) -> None:
    assert parse_date(text, today=TODAY) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2026年2月30日", "没有这个日期，请再看一下，比如 2026年3月1日。"),
        ("2月30日", "没有这个日期，请再看一下，比如 2026年3月1日。"),
        ("2026-13-01", "没有这个日期，请再看一下，比如 2026年3月1日。"),
        ("20261301", "没有这个日期，请再看一下，比如 2026年3月1日。"),
        ("2025年2月29日", "没有这个日期，请再看一下，比如 2026年3月1日。"),
        ("1800年1月1日", "没有这个日期，请再看一下，比如 2026年3月1日。"),
        ("农历三月初一", "请回复阳历日期，比如 2026年3月1日。"),
        ("正月十五", "请回复阳历日期，比如 2026年3月1日。"),
        ("上个月", "请回复日期，比如 2026年3月1日。"),
        ("2026年3月", "请回复日期，比如 2026年3月1日。"),
        ("3500", "请回复日期，比如 2026年3月1日。"),
        *[(text, "请回复日期，比如 2026年3月1日。") for text in HOSTILE],
    ],
)
def test_parse_date_rejects(text: str, message: str) -> None:
    with pytest.raises(FieldError) as caught:
        parse_date(text, today=TODAY)
    assert caught.value.message == message
    assert_chinese_hint(caught.value)


def test_parse_date_without_year_moves_to_the_allowed_side() -> None:
    assert parse_date("12月1日", today=TODAY, allow_future=False) == date(2025, 12, 1)
    assert parse_date("3月1日", today=TODAY, allow_future=False) == date(2026, 3, 1)
    assert parse_date("3月1日", today=TODAY, allow_past=False) == date(2027, 3, 1)
    assert parse_date("今天", today=TODAY, allow_future=False, allow_past=False) == TODAY


@pytest.mark.parametrize(
    ("text", "allow_future", "allow_past", "message"),
    [
        ("明天", False, True, "日期不能晚于今天，请再看一下。"),
        ("2027-01-01", False, True, "日期不能晚于今天，请再看一下。"),
        ("昨天", True, False, "日期不能早于今天，请再看一下。"),
        ("2020年1月1日", True, False, "日期不能早于今天，请再看一下。"),
    ],
)
def test_parse_date_direction(
    text: str, allow_future: bool, allow_past: bool, message: str
) -> None:
    with pytest.raises(FieldError) as caught:
        parse_date(text, today=TODAY, allow_future=allow_future, allow_past=allow_past)
    assert caught.value.message == message


# --- parse_yes_no --------------------------------------------------------------------------

YES = [
    "是", "对", "对的", "是的", "好", "好的", "可以", "确认", "确定", "同意", "有", "要", "需要",
    "1", "１", "y", "Y", "yes", "YES", "ok", "OK", "Ok", "嗯", "嗯嗯", "对对对", "✓", "✔️",
    "👍", "👍🏽", "是的。", "好的！", " 好 ", "好吧", "可以的", "[强]",
]  # fmt: skip
NO = [
    "否", "不", "不是", "不对", "没有", "无", "不要", "不需要", "不用", "不同意", "2", "２",
    "n", "N", "no", "NO", "✗", "没有了", "不是的", "不了", "不行", "❌",
]  # fmt: skip


@pytest.mark.parametrize("text", YES)
def test_parse_yes(text: str) -> None:
    assert parse_yes_no(text) is True


@pytest.mark.parametrize("text", NO)
def test_parse_no(text: str) -> None:
    assert parse_yes_no(text) is False


@pytest.mark.parametrize(
    "text",
    ["3", "0", "是不是", "不好说", "也许", "哦", "的", "🙂", "yesno", "是否"]
    + [text for text in HOSTILE if text != "👍"],  # a thumbs-up is a yes
)
def test_parse_yes_no_rejects(text: str) -> None:
    with pytest.raises(FieldError) as caught:
        parse_yes_no(text)
    assert caught.value.message == "请回复 1（是）或 2（否）。"


# --- parse_choice --------------------------------------------------------------------------

CROPS = ["生猪养殖", "种植蔬菜", "外出务工", "其他"]
NEEDS = ["需要", "不需要"]


@pytest.mark.parametrize(
    ("text", "choices", "index"),
    [
        ("1", CROPS, 0),
        ("４", CROPS, 3),
        ("一", CROPS, 0),
        ("第二个", CROPS, 1),
        ("第2项", CROPS, 1),
        ("2号", CROPS, 1),
        ("选3", CROPS, 2),
        ("3.", CROPS, 2),
        ("(3)", CROPS, 2),
        ("③", CROPS, 2),
        ("外出务工", CROPS, 2),
        ("外出 务工", CROPS, 2),
        ("我是外出务工的", CROPS, 2),
        ("务工", CROPS, 2),
        ("生猪", CROPS, 0),
        ("需要", NEEDS, 0),
        ("不需要", NEEDS, 1),
        ("我不需要", NEEDS, 1),
        ("ABC", ["abc", "def"], 0),
        ("2人", ["1人", "2人", "3人"], 1),
    ],
)
def test_parse_choice_accepts(text: str, choices: list[str], index: int) -> None:
    assert parse_choice(text, choices) == index


@pytest.mark.parametrize(
    ("text", "choices", "message"),
    [
        ("5", CROPS, "请回复 1 到 4 之间的数字。"),
        ("0", CROPS, "请回复 1 到 4 之间的数字。"),
        ("第五个", CROPS, "请回复 1 到 4 之间的数字。"),
        ("要", NEEDS, "请回复选项前面的数字，比如 1。"),
        ("养猪", CROPS, "请回复选项前面的数字，比如 1。"),
        ("种", ["种植蔬菜", "种植水果"], "请回复选项前面的数字，比如 1。"),
        ("-1", CROPS, "请回复选项前面的数字，比如 1。"),
        *[(text, CROPS, "请回复选项前面的数字，比如 1。") for text in HOSTILE],
    ],
)
def test_parse_choice_rejects(text: str, choices: list[str], message: str) -> None:
    with pytest.raises(FieldError) as caught:
        parse_choice(text, choices)
    assert caught.value.message == message


RELATIONS = ["配偶", "儿子", "女儿", "儿媳", "女婿", "父亲", "母亲", "孙子女", "其他"]
KIN = {
    "配偶": ["老伴", "老头", "老头子", "老婆", "老婆子", "爱人", "媳妇"],
    "儿媳": ["儿媳妇"],
    "孙子女": ["孙子", "孙女"],
    "女儿": ["闺女"],
}


@pytest.mark.parametrize(
    ("text", "index"),
    [
        ("老伴", 0),
        ("我老伴", 0),
        ("老头子", 0),
        ("是我老婆子", 0),
        ("媳妇", 0),
        ("儿媳妇", 3),  # holds 媳妇 (配偶) too: the longer word wins
        ("儿媳", 3),
        ("孙女", 7),
        ("闺女", 2),
        ("配偶", 0),
        ("1", 0),
        ("９", 8),
    ],
)
def test_parse_choice_understands_synonyms(text: str, index: int) -> None:
    assert parse_choice(text, RELATIONS, KIN) == index


def test_parse_choice_synonyms_do_not_make_guesses() -> None:
    with pytest.raises(FieldError):
        parse_choice("老伴和儿子", RELATIONS, KIN)  # two people: ask again
    with pytest.raises(FieldError):
        parse_choice("老伴", RELATIONS)  # without the flow's synonyms, not a choice
    assert parse_choice("养猪", CROPS, {"生猪养殖": ["养猪", "喂猪"]}) == 0
    assert (
        parse(
            "choice",
            "喂猪",
            options={"choices": CROPS, "synonyms": {"生猪养殖": ["喂猪"]}},
            today=TODAY,
        )
        == 0
    )


def test_parse_choice_needs_choices() -> None:
    with pytest.raises(ValueError, match="choice"):
        parse_choice("1", [])


# --- parse_phone / mask_phone --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("13812345678", "13812345678"),
        ("138 1234 5678", "13812345678"),
        ("138-1234-5678", "13812345678"),
        ("１３８１２３４５６７８", "13812345678"),
        ("+86 138 1234 5678", "13812345678"),
        ("+8613812345678", "13812345678"),
        ("8613812345678", "13812345678"),
        ("008613812345678", "13812345678"),
        ("19912345678", "19912345678"),
        ("手机：13812345678", "13812345678"),
        ("0851-12345678", "085112345678"),
        ("0851-2345678", "08512345678"),
        ("010-62345678", "01062345678"),
        ("(0851) 23456789", "085123456789"),
    ],
)
def test_parse_phone_accepts(text: str, expected: str) -> None:
    assert parse_phone(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1381234567", "手机号码应是 11 位，您发来的是 10 位，请再看一下。"),
        ("138123456789", "手机号码应是 11 位，您发来的是 12 位，请再看一下。"),
        ("12812345678", "请回复 11 位手机号码。"),
        ("23812345678", "请回复 11 位手机号码。"),
        ("00851-12345678", "请回复 11 位手机号码。"),
        ("138l2345678", "请回复 11 位手机号码。"),
        ("Tel 13812345678", "请回复 11 位手机号码。"),
        *[(text, "请回复 11 位手机号码。") for text in HOSTILE if not text.startswith("3")],
    ],
)
def test_parse_phone_rejects(text: str, message: str) -> None:
    with pytest.raises(FieldError) as caught:
        parse_phone(text)
    assert caught.value.message == message


@pytest.mark.parametrize(
    ("phone", "masked"),
    [("13812345678", "138****5678"), ("085112345678", "085*****5678"), ("123", "***")],
)
def test_mask_phone(phone: str, masked: str) -> None:
    assert mask_phone(phone) == masked


# --- parse_id_number / id_birth_date / mask_id ---------------------------------------------


def test_make_id_helper_matches_the_published_sample() -> None:
    assert make_id(VALID_ID_X[:17]) == VALID_ID_X


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (VALID_ID, VALID_ID),
        (VALID_ID_X, VALID_ID_X),
        (VALID_ID_X.lower(), VALID_ID_X),
        (" " + VALID_ID + " ", VALID_ID),
        (VALID_ID[:6] + " " + VALID_ID[6:14] + " " + VALID_ID[14:], VALID_ID),
        (VALID_ID_X[:-1] + "Ｘ", VALID_ID_X),
        ("".join(chr(ord(c) + 0xFEE0) for c in VALID_ID), VALID_ID),
        (make_id("44030620000229001"), make_id("44030620000229001")),
    ],
)
def test_parse_id_accepts(text: str, expected: str) -> None:
    assert parse_id_number(text, today=TODAY) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (VALID_ID[:-1], "身份证号应是 18 位，请再看一下。"),
        (VALID_ID + "1", "身份证号应是 18 位，请再看一下。"),
        ("520102800101123", "身份证号应是 18 位，请再看一下。"),
        (bad_check(VALID_ID), "身份证号好像有一位不对，请再核对一下。"),
        (bad_check(VALID_ID_X), "身份证号好像有一位不对，请再核对一下。"),
        ("110105194912310021", "身份证号好像有一位不对，请再核对一下。"),
        (VALID_ID[:5] + "X" + VALID_ID[6:], "身份证号只有数字，最后一位可能是 X，请再看一下。"),
        (VALID_ID[:17] + "Y", "身份证号只有数字，最后一位可能是 X，请再看一下。"),
        (make_id("52010219800230123"), "身份证号里的出生日期不对，请再核对一下。"),
        (make_id("52010220300101123"), "身份证号里的出生日期不对，请再核对一下。"),
        (make_id("52010218800101123"), "身份证号里的出生日期不对，请再核对一下。"),
        *[(text, "身份证号应是 18 位，请再看一下。") for text in HOSTILE],
    ],
)
def test_parse_id_rejects(text: str, message: str) -> None:
    with pytest.raises(FieldError) as caught:
        parse_id_number(text, today=TODAY)
    assert caught.value.message == message
    assert_chinese_hint(caught.value)


def test_parse_id_future_birth_only_checked_against_today_when_given() -> None:
    future = make_id("52010220300101123")
    assert parse_id_number(future) == future


def test_id_birth_date() -> None:
    assert id_birth_date(VALID_ID) == date(1980, 1, 1)
    assert id_birth_date(VALID_ID_X) == date(1949, 12, 31)
    with pytest.raises(FieldError):
        id_birth_date("520102198002301234")


def test_mask_id() -> None:
    masked = mask_id(VALID_ID_X)
    assert masked == "110*************2X"
    assert len(masked) == 18
    assert mask_id("12345") == "*****"


# --- parse_name ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("王小明", "王小明"),
        ("王 小 明", "王小明"),
        ("王\u3000小明", "王小明"),
        ("李娜", "李娜"),
        ("欧阳娜娜", "欧阳娜娜"),
        ("阿卜杜拉·买买提", "阿卜杜拉·买买提"),
        ("阿卜杜拉•买买提", "阿卜杜拉·买买提"),
        ("阿卜杜拉．买买提", "阿卜杜拉·买买提"),
        ("阿卜杜拉・买买提", "阿卜杜拉·买买提"),
        ("阿卜杜拉 · 买买提", "阿卜杜拉·买买提"),
        ("王小明。", "王小明"),
        ("张㛃", "张㛃"),  # Extension A
        ("吉𠮷", "吉𠮷"),  # Extension B, outside the BMP
        ("王" * 20, "王" * 20),
        ("王㛃", "王㛃"),
        # What people say around a name goes.
        ("我叫王琼翠", "王琼翠"),
        ("我是王琼翠。", "王琼翠"),
        ("名字叫王琼翠", "王琼翠"),
        ("我的名字是王琼翠", "王琼翠"),
        ("叫王琼翠", "王琼翠"),
        ("姓名：王琼翠", "王琼翠"),
        ("我叫 王㛃", "王㛃"),
        ("老伴叫李长贵", "李长贵"),
        ("我儿子叫王小军", "王小军"),
        ("叶叫天", "叶叫天"),  # 叫 inside a name, nothing after it shaped like a name
    ],
)
def test_parse_name_accepts(text: str, expected: str) -> None:
    assert parse_name(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "王小明2",
        "Wang Xiaoming",
        "王xiaoming",
        "ＷＡＮＧ",
        "·王小明",
        "王小明·",
        "王··明",
        "王小明🙂",
        "我叫王小明，今年六十五岁了",
        *HOSTILE,
    ],
)
def test_parse_name_rejects(text: str) -> None:
    with pytest.raises(FieldError) as caught:
        parse_name(text)
    assert caught.value.message == "请回复姓名，用汉字，比如：王小明。"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("王", "名字至少两个字，请回复全名，比如：王小明。"),
        ("王" * 21, "名字最多 20 个字，请再看一下。"),
        ("没有", "“没有”不是名字。请回复姓名，比如：王小明。"),
        ("生病", "“生病”不是名字。请回复姓名，比如：王小明。"),
        ("不知道", "“不知道”不是名字。请回复姓名，比如：王小明。"),
        ("就我一个人", "“就我一个人”不是名字。请回复姓名，比如：王小明。"),
        ("老伴", "“老伴”不是名字。请回复姓名，比如：王小明。"),
        ("我自己", "“我自己”不是名字。请回复姓名，比如：王小明。"),
        ("好的", "“好的”不是名字。请回复姓名，比如：王小明。"),
    ],
)
def test_parse_name_refuses_with_a_plain_hint(text: str, message: str) -> None:
    with pytest.raises(FieldError) as caught:
        parse_name(text)
    assert caught.value.message == message


@pytest.mark.parametrize(
    ("text", "split"),
    [
        ("老伴叫李长贵", ("老伴", "李长贵")),
        ("我老伴叫李长贵。", ("我老伴", "李长贵")),
        ("我叫王琼翠", ("我叫", "王琼翠")),
        ("李长贵", ("", "李长贵")),
        ("叫", ("", "叫")),
        ("叶叫天", ("", "叶叫天")),
        ("好" * 2000, ("", "好" * 2000)),
    ],
)
def test_name_lead_splits_what_comes_before_the_name(text: str, split: tuple[str, str]) -> None:
    assert name_lead(text) == split


def test_word_key_drops_what_does_not_change_a_word() -> None:
    assert word_key(" 没有了。") == "没有"
    assert word_key("就我一个人啊！") == "就我一个人"
    assert word_key("ＯＫ👍🏻") == "ok👍"


# --- parse_text ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("家里房子漏雨", "家里房子漏雨"),
        ("  家里   房子\n\n漏雨 ", "家里 房子 漏雨"),
        ("'; DROP TABLE users; --", "'; DROP TABLE users; --"),
        ("👍", "👍"),
        ("腿疼，走不了路。", "腿疼，走不了路。"),
        ("ab\x00c", "abc"),
        ("字" * 200, "字" * 200),
    ],
)
def test_parse_text_accepts(text: str, expected: str) -> None:
    assert parse_text(text) == expected


def test_parse_text_rejects() -> None:
    for text in ["", "   ", "\n\t", "\x00"]:
        with pytest.raises(FieldError) as caught:
            parse_text(text)
        assert caught.value.message == "请回复文字内容。"
    with pytest.raises(FieldError) as caught:
        parse_text("字" * 2000)
    assert caught.value.message == "太长了，请控制在 200 字以内。"
    with pytest.raises(FieldError) as caught:
        parse_text("字" * 51, max_length=50)
    assert caught.value.message == "太长了，请控制在 50 字以内。"
    with pytest.raises(FieldError) as caught:
        parse_text("字", min_length=5)
    assert caught.value.message == "太短了，请至少写 5 个字。"


def test_clip_text_keeps_whole_sentences_within_the_limit() -> None:
    first = "老伴生病住院，欠了两万块钱。"  # 14 characters
    second = "儿子在外打工，一年回来一次。"
    kept, cut = clip_text(first + second + "房子漏雨", 20)
    assert (kept, cut) == (first, second + "房子漏雨")
    assert clip_text(first, 20) == (first, "")
    # No sentence end in the second half: the last clause end, without its comma.
    kept, cut = clip_text("老伴生病住院，欠了两万块钱没钱看病", 12)
    assert (kept, cut) == ("老伴生病住院", "欠了两万块钱没钱看病")
    # No punctuation at all: cut at the limit.
    assert clip_text("好" * 5000, 300) == ("好" * 300, "好" * 4700)
    assert clip_text("  房子\n\n 漏雨  ", 300) == ("房子 漏雨", "")


# --- parse (dispatch) ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "text", "options", "expected"),
    [
        ("number", "3口人", {"min": 1, "max": 20}, 3),
        ("money", "3千5", {"min_yuan": 0, "max_yuan": 865}, None),
        ("money", "865", {"min_yuan": 0, "max_yuan": 865}, 86500),
        ("money", "0.1", {"min_yuan": 0.1}, 10),
        ("date", "昨天", {"allow_future": False}, date(2026, 5, 9)),
        ("yes_no", "是的", {}, True),
        ("choice", "第二个", {"choices": CROPS}, 1),
        ("phone", "138 1234 5678", {}, "13812345678"),
        ("id_number", VALID_ID, {}, VALID_ID),
        ("name", "王 小 明", {}, "王小明"),
        ("text", "  房子   漏雨 ", {"max_length": 10}, "房子 漏雨"),
    ],
)
def test_parse_dispatch(kind: str, text: str, options: dict, expected: object) -> None:
    if expected is None:
        with pytest.raises(FieldError) as caught:
            parse(kind, text, options=options, today=TODAY)
        assert caught.value.message == "请回复 0 到 865 元之间的金额。"
    else:
        assert parse(kind, text, options=options, today=TODAY) == expected


def test_parse_dispatch_passes_today_to_id_and_date() -> None:
    with pytest.raises(FieldError):
        parse("id_number", make_id("52010220300101123"), options={}, today=TODAY)
    with pytest.raises(FieldError) as caught:
        parse("date", "明天", options={"allow_future": False}, today=TODAY)
    assert caught.value.message == "日期不能晚于今天，请再看一下。"


@pytest.mark.parametrize(
    ("kind", "options"),
    [
        ("photo", {}),
        ("Number", {}),
        ("number", {"maximum": 3}),
        ("text", {"min": 1}),
        ("number", {"min": "1"}),
        ("choice", {}),
        ("choice", {"choices": []}),
        ("money", {"max_yuan": "abc"}),
        ("money", {"max_yuan": 1.005}),
        ("money", {"max_yuan": float("nan")}),
    ],
)
def test_parse_dispatch_programming_errors(kind: str, options: dict) -> None:
    with pytest.raises(ValueError) as caught:
        parse(kind, "1", options=options, today=TODAY)
    assert not isinstance(caught.value, FieldError)


def test_kinds_and_option_keys_agree() -> None:
    assert {
        "number", "money", "date", "yes_no", "choice", "phone", "id_number", "name", "text",
    } == KINDS  # fmt: skip
    assert set(OPTION_KEYS) == KINDS


@pytest.mark.parametrize(
    ("typed", "kept"),
    [
        ("不符合条件。", "不符合条件"),
        ("家里有车！ ", "家里有车"),
        ("已经够了", "已经够了"),
        ("", ""),
    ],
)
def test_a_clause_set_inside_our_sentence_loses_its_own_stop(typed: str, kept: str) -> None:
    assert clause(typed) == kept
    assert "。。" not in f"没有批准：{clause(typed)}。"
