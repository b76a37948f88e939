"""Signature and safe-mode crypto, against the platform's published sample message."""

from datetime import UTC, datetime

import pytest
import xmltodict
from hypothesis import given, settings
from hypothesis import strategies as st

from bangfu_bot.clock import FrozenClock
from bangfu_bot.wechat.crypto import PushRejected, PushVerifier, parse_tree, parse_xml, sign
from bangfu_bot.wechat.inbound import read_inbound

# The official sample from the platform's encryption guide (token spamtest, appid
# wx2c2769f8efd9abc2), reproduced by every SDK's tests.
SAMPLE_TOKEN = "spamtest"
SAMPLE_APPID = "wx2c2769f8efd9abc2"
SAMPLE_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
SAMPLE_TIMESTAMP = "1409735669"
SAMPLE_NONCE = "1320562132"
SAMPLE_MSG_SIGNATURE = "5d197aaffba7e9b25a30732f161a50dee96bd5fa"
SAMPLE_ENCRYPT = (
    "hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGH"
    "QHFVAFmOD2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6"
    "tEDYsVticbSnyU8dKOIbgU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp"
    "3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhv"
    "Ql+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE="
)
SAMPLE_BODY = (
    "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName>"
    f"<Encrypt><![CDATA[{SAMPLE_ENCRYPT}]]></Encrypt></xml>"
).encode()


def sample_verifier(**kwargs: object) -> PushVerifier:
    clock = FrozenClock(datetime.fromtimestamp(int(SAMPLE_TIMESTAMP), UTC))
    options: dict = dict(
        token=SAMPLE_TOKEN,
        appid=SAMPLE_APPID,
        aes_key=SAMPLE_KEY,
        aes_key_previous="",
        max_clock_skew_s=300,
        clock=clock,
    )
    options.update(kwargs)
    return PushVerifier(**options)


def sample_query() -> dict[str, str]:
    return {
        "signature": sign(SAMPLE_TOKEN, SAMPLE_TIMESTAMP, SAMPLE_NONCE),
        "timestamp": SAMPLE_TIMESTAMP,
        "nonce": SAMPLE_NONCE,
        "encrypt_type": "aes",
        "msg_signature": SAMPLE_MSG_SIGNATURE,
    }


def test_published_sample_decrypts_to_the_text_message() -> None:
    verifier = sample_verifier()
    verifier.check_query(sample_query())
    opened = verifier.open(sample_query(), SAMPLE_BODY)
    message = read_inbound(opened.xml, FrozenClock())
    assert message.msg_type == "text"
    assert message.openid == "oyORnuP8q7ou2gfYjqLzSIWZf0rs"
    assert message.content == "abcdteT"
    assert message.dedupe_key == "msg:6054768590064713728"


def test_published_sample_msg_signature_matches_our_sign() -> None:
    assert (
        sign(SAMPLE_TOKEN, SAMPLE_TIMESTAMP, SAMPLE_NONCE, SAMPLE_ENCRYPT) == SAMPLE_MSG_SIGNATURE
    )


def test_sample_opens_with_the_previous_key_during_a_rotation() -> None:
    verifier = sample_verifier(aes_key="Z" * 43, aes_key_previous=SAMPLE_KEY)
    opened = verifier.open(sample_query(), SAMPLE_BODY)
    assert "abcdteT" in opened.xml


def test_sample_for_another_appid_is_refused() -> None:
    verifier = sample_verifier(appid="wxsomeoneelse00000")
    with pytest.raises(PushRejected) as refused:
        verifier.open(sample_query(), SAMPLE_BODY)
    assert refused.value.status == 400


def test_sample_replayed_a_day_later_is_refused() -> None:
    verifier = sample_verifier()
    verifier._clock.advance(days=1)  # type: ignore[attr-defined]
    with pytest.raises(PushRejected) as refused:
        verifier.check_query(sample_query())
    assert "timestamp off" in refused.value.reason


def test_skew_check_can_be_disabled() -> None:
    verifier = sample_verifier(max_clock_skew_s=0)
    verifier._clock.advance(days=400)  # type: ignore[attr-defined]
    verifier.check_query(sample_query())


@pytest.mark.parametrize(
    "body",
    [
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><xml><a>&a;</a></xml>',
        b"<xml><unclosed></xml>",
        b"not xml at all",
        b"<html><body>hi</body></html>",
    ],
)
def test_hostile_xml_is_refused_with_400(body: bytes) -> None:
    with pytest.raises(PushRejected) as refused:
        parse_xml(body.decode())
    assert refused.value.status == 400


PUSHES = [
    "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[o-1]]></FromUserName>"
    "<CreateTime>1796091761</CreateTime><MsgType><![CDATA[text]]></MsgType>"
    "<Content><![CDATA[  申请 \n]]></Content><MsgId>1234567890123456</MsgId></xml>",
    "<xml><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[scancode_waitmsg]]></Event>"
    "<EventKey><![CDATA[k]]></EventKey><ScanCodeInfo><ScanType><![CDATA[qrcode]]></ScanType>"
    "<ScanResult><![CDATA[1]]></ScanResult></ScanCodeInfo></xml>",
    "<xml><MsgType>event</MsgType><Event>pic_sysphoto</Event><SendPicsInfo><Count>2</Count>"
    "<PicList><item><PicMd5Sum>a</PicMd5Sum></item><item><PicMd5Sum>b</PicMd5Sum></item>"
    "</PicList></SendPicsInfo><Empty></Empty><Blank>  </Blank></xml>",
    '<xml><MsgType>event</MsgType><Event>MASSSENDJOBFINISH</Event><Status a="1">ok</Status>'
    "<CopyrightCheckResult><Count>0</Count><ResultList/><CheckState>1</CheckState>"
    "</CopyrightCheckResult></xml>",
]


@pytest.mark.parametrize("xml", PUSHES)
def test_pushes_parse_to_the_shape_wechatpy_reads(xml: str) -> None:
    # wechatpy's message classes read xmltodict's shape; ours must be the same, field for field.
    assert parse_xml(xml) == xmltodict.parse(xml, disable_entities=True)["xml"]


_TEXT = st.text(st.characters(codec="utf-8"), max_size=12) | st.sampled_from(
    ["]]>", "a]]>b", "&amp;", "<", "\r\n", "  x  ", "", "\x01", "申请", "\ufffe"]
)


@st.composite
def _pushes(draw: st.DrawFn) -> str:
    tags = st.sampled_from(["Content", "MsgId", "Event", "A_1", "b", "a-b.c", "1a", "中文"])
    fields = draw(st.lists(st.tuples(tags, _TEXT, st.booleans()), max_size=6))
    parts = []
    for tag, text, cdata in fields:
        if cdata:
            body = "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"
        else:
            body = text.replace("&", "&amp;").replace("<", "&lt;")
        parts.append(f"{draw(st.sampled_from(['', chr(10), ' ']))}<{tag}>{body}</{tag}>")
    return "<xml>" + "".join(parts) + "</xml>"


@settings(max_examples=400, deadline=None)
@given(xml=_pushes())
def test_the_flat_fast_path_reads_exactly_what_the_parser_reads(xml: str) -> None:
    def outcome(parse):  # type: ignore[no-untyped-def]
        try:
            return parse(xml)
        except PushRejected as refused:
            return ("refused", refused.status)

    assert outcome(parse_xml) == outcome(parse_tree)
