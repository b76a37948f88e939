"""Who a WeChat user is: the batch's prefetch must say what a lookup of its own says."""

from __future__ import annotations

from datetime import UTC, datetime

from bangfu_bot import db
from bangfu_bot.group_commit import Hints, UnitOfWork
from bangfu_bot.members.service import PEOPLE, bind, person_for_openid, prefetch_people
from tests.factories import make_person, make_tree

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


async def test_the_batch_knows_each_user_as_a_lookup_of_its_own_does(database_url: str) -> None:
    engine = db.make_engine(database_url)
    await db.migrate(engine)
    tree = await make_tree(engine, NOW)
    secretary, _ = await make_person(
        engine, NOW, name="王书记", branch=tree.branch, roles=("member", "secretary"), serial=1
    )
    member, _ = await make_person(engine, NOW, name="李大爷", branch=tree.other_branch, serial=2)
    official, _ = await make_person(engine, NOW, name="张部长", branch=None, roles=(), serial=3)
    async with engine.begin() as conn:
        for openid, person in (
            ("o-sec-phone", secretary),
            ("o-sec-pad", secretary),
            ("o-member", member),
            ("o-official", official),
        ):
            await bind(conn, openid=openid, person_id=person, channel="chat", now=NOW)
    openids = ["o-sec-phone", "o-sec-pad", "o-member", "o-official", "o-stranger"]
    async with engine.connect() as conn:
        alone = {openid: await person_for_openid(conn, openid) for openid in openids}
        uow = UnitOfWork(conn, [Hints(openid) for openid in openids])
        await prefetch_people(uow)
        prefetched = {openid: uow.get(PEOPLE, openid) for openid in openids}
        together = {openid: await person_for_openid(conn, openid, uow) for openid in openids}
    await engine.dispose()
    assert prefetched == alone == together
    assert alone["o-sec-pad"].roles == frozenset({"member", "secretary"})  # type: ignore[union-attr]
    assert alone["o-official"].roles == frozenset()  # type: ignore[union-attr]
    assert alone["o-member"].committee_name == "青山镇党委"  # type: ignore[union-attr]
    assert alone["o-stranger"] is None
