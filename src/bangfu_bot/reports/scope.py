"""Where the desk's readers look: the whole county, one township (党委) or one branch (支部).

Every query of the desk's read side narrows by a person's branch through these helpers, so
a township officer's page can never count another township's people."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, select, true

from bangfu_bot.members.models import organisations
from bangfu_bot.reports.viewer import Viewer


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


def viewer_scope(viewer: Viewer) -> tuple[int | None, int | None] | None:
    """A desk viewer's reach as `in_scope`'s (township_id, branch_id): (None, None) for the
    county, their township's id for an officer, their branch's for a secretary; None when
    the roster does not place them, so they see nothing rather than the county."""
    if viewer.county_wide:
        return None, None
    if viewer.scope == "township":
        township = viewer.person.committee_id
        return None if township is None else (township, None)
    branch = viewer.person.branch_id
    return None if branch is None else (None, branch)
