"""A big made-up county for the bench: townships, branches, members bound to WeChat.

Written with multi-row inserts through SQLAlchemy Core (the project's one data layer), in
chunks, so 100,000 members take seconds. Names and ID numbers are made up and valid in form.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from bangfu_bot.common.idnumbers import with_check
from bangfu_bot.db import refresh_statistics
from bangfu_bot.members.models import bindings, organisations, people, person_roles
from bangfu_bot.wechat.models import wechat_users

CHUNK = 5_000
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "德福明华国建军平秀英兰芳桂珍玉梅"


@dataclass
class BigCounty:
    """What was created: branch ids, and each member's (person id, openid), in order."""

    branches: list[int]
    members: list[tuple[int, str]]


def id_number(n: int) -> str:
    """A made-up ID number, unique per n, valid in form (right checksum)."""
    region = f"52{n // 365_000 % 100:02d}01"
    born = date(1940 + n // 1000 % 50, 1 + n // 100 % 12, 1 + n % 28)
    return with_check(f"{region}{born:%Y%m%d}{n % 1000:03d}")


def openid_of(n: int) -> str:
    """The bench's openid of member n."""
    return f"o-bench-{n:07d}"


async def seed(
    engine: AsyncEngine,
    members: int,
    now: datetime,
    *,
    townships: int = 20,
    branches_per_township: int = 25,
) -> BigCounty:
    """Create the county and `members` bound, following members spread over its branches."""
    async with engine.begin() as conn:
        county = (
            await conn.execute(
                insert(organisations).values(kind="county", name="基准县委组织部", parent_id=None)
            )
        ).inserted_primary_key[0]
        branches: list[int] = []
        for t in range(townships):
            committee = (
                await conn.execute(
                    insert(organisations).values(
                        kind="committee", name=f"基准{t + 1}镇党委", parent_id=county
                    )
                )
            ).inserted_primary_key[0]
            for b in range(branches_per_township):
                branches.append(
                    int(
                        (
                            await conn.execute(
                                insert(organisations).values(
                                    kind="branch",
                                    name=f"基准{t + 1}镇{b + 1}村党支部",
                                    parent_id=committee,
                                )
                            )
                        ).inserted_primary_key[0]
                    )
                )
    created: list[tuple[int, str]] = []
    for start in range(0, members, CHUNK):
        numbers = range(start, min(start + CHUNK, members))
        async with engine.begin() as conn:
            await conn.execute(
                insert(people),
                [
                    {
                        "name": SURNAMES[n % 20] + GIVEN[n // 20 % 16] + GIVEN[n // 320 % 16],
                        "id_number": id_number(n),
                        "branch_id": branches[n % len(branches)],
                        "gender": "男" if n % 2 else "女",
                        "urban_rural": "农村",
                        "active": True,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for n in numbers
                ],
            )
            ids = dict(
                (
                    await conn.execute(
                        people.select()
                        .with_only_columns(people.c.id_number, people.c.id)
                        .where(people.c.id_number.in_([id_number(n) for n in numbers]))
                    )
                ).all()
            )
            pairs = [(int(ids[id_number(n)]), openid_of(n)) for n in numbers]
            await conn.execute(
                insert(person_roles), [{"person_id": pid, "role": "member"} for pid, _ in pairs]
            )
            await conn.execute(
                insert(bindings),
                [
                    {"openid": oid, "person_id": pid, "channel": "import", "bound_at": now}
                    for pid, oid in pairs
                ],
            )
            await conn.execute(
                insert(wechat_users),
                [
                    {"openid": oid, "subscribed": True, "first_seen_at": now, "subscribed_at": now}
                    for _, oid in pairs
                ],
            )
        created.extend(pairs)
    await refresh_statistics(engine)  # as the roster import does after a bulk load
    return BigCounty(branches, created)
