"""Where the desk's readers look: the whole county, one township (党委) or one branch (支部).

Every query of the desk's read side narrows by a person's branch through these helpers, so
a township officer's page can never count another township's people."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, select, true

from bangfu_bot.members.models import organisations


def in_scope(
    branch_column: ColumnElement[Any], *, township_id: int | None, branch_id: int | None
) -> ColumnElement[bool]:
    """A condition on a branch id column: within `branch_id`, within the branches of
    `township_id`, or (both None) anywhere in the county."""
    condition: ColumnElement[bool] = true()
    if branch_id is not None:
        condition = condition & (branch_column == branch_id)
    if township_id is not None:
        branches = select(organisations.c.id).where(
            organisations.c.kind == "branch", organisations.c.parent_id == township_id
        )
        condition = condition & branch_column.in_(branches)
    return condition
