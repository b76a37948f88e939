"""`make demo`: the whole story plays through the webhook and the transcript shows each
milestone; the exported workbooks open."""

from __future__ import annotations

from pathlib import Path

import openpyxl

from bangfu_bot.demo.play import play


async def test_the_demo_plays_the_whole_mechanism(tmp_path: Path) -> None:
    lines: list[str] = []
    result = await play(tmp_path / "demo", echo=lines.append)
    transcript = "\n".join(lines)
    assert lines == result.transcript
    assert transcript.count("绑定好了") == 5
    assert "[2026年11月10日 10:00] 王德福 > 申请" in transcript
    for milestone in [
        "申请已经交上去了",
        "评议通过",
        "公示已结束",
        "已上报党委",
        "已批准",
        "已列入帮扶台账",
        "已开展“2027年春节走访慰问”",
        "慰问金已从帮扶基金支出",
        "借款申请已交上去",
        "已确认放款",
        "还款提醒；第1期",  # the reminder template: facts, not the greeting
        "全部还清",
        "共 2 人",
        "已为您报名",
        "对账：平",
    ]:
        assert milestone in transcript, milestone
    assert "（推送）→ 张建国［客服消息］新的帮扶申请：王德福" in transcript
    assert "［模板消息］" in transcript and "［群发］" in transcript
    assert "[2027年12月1日 10:00]" in transcript or "时间来到 2027年12月1日" in transcript
    assert result.reconciled and result.ledger_rows == 1
    assert str(result.ledger_path) in lines[-3] and str(result.fund_report_path) in lines[-2]
    ledger = openpyxl.load_workbook(result.ledger_path)
    values = [
        cell for row in ledger["青山镇党委"].iter_rows(values_only=True) for cell in row if cell
    ]
    assert "王德福" in values and "刘洋" in values
    report = openpyxl.load_workbook(result.fund_report_path)
    assert report.sheetnames
