"""Factories for rows the chat tests need: an organisation tree and people on the roster."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import insert

from bangfu_bot.common.idnumbers import with_check
from bangfu_bot.members.models import organisations, people, person_roles


def id_number(region: str = "520102", born: date = date(1956, 3, 14), serial: int = 123) -> str:
    """A made-up ID number that is valid in form (right checksum)."""
    return with_check(f"{region}{born:%Y%m%d}{serial:03d}")


@dataclass
class Tree:
    """A county with one committee and two branches."""

    county: int
    committee: int
    branch: int
    other_branch: int


async def make_tree(engine: Any, now: datetime) -> Tree:
    """Create 示范县 → 青山镇党委 → 桃源村党支部 and 李家村党支部."""
    async with engine.begin() as conn:
        county = await _org(conn, "county", "示范县委组织部", None)
        committee = await _org(conn, "committee", "青山镇党委", county)
        branch = await _org(conn, "branch", "桃源村党支部", committee)
        other = await _org(conn, "branch", "李家村党支部", committee)
    return Tree(county, committee, branch, other)


async def _org(conn: Any, kind: str, name: str, parent: int | None) -> int:
    result = await conn.execute(
        insert(organisations).values(kind=kind, name=name, parent_id=parent)
    )
    return int(result.inserted_primary_key[0])


async def make_person(
    engine: Any,
    now: datetime,
    *,
    name: str,
    branch: int | None,
    roles: tuple[str, ...] = ("member",),
    serial: int = 123,
    born: date = date(1956, 3, 14),
    urban_rural: str = "农村",
) -> tuple[int, str]:
    """A person on the roster; returns (id, ID number)."""
    number = id_number(born=born, serial=serial)
    async with engine.begin() as conn:
        result = await conn.execute(
            insert(people).values(
                name=name,
                gender="男",
                birth_date=born,
                id_number=number,
                phone="13800138000",
                branch_id=branch,
                urban_rural=urban_rural,
                active=True,
                created_at=now,
                updated_at=now,
            )
        )
        person_id = int(result.inserted_primary_key[0])
        for role in roles:
            await conn.execute(insert(person_roles).values(person_id=person_id, role=role))
    return person_id, number
