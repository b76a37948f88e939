"""Who is looking at the desk, and how far they see (issue 16).

The desk serves a person in one role, the widest they hold: the department sees the county
and acts; the supervision group sees the county and changes nothing; a township committee
officer sees their township; a branch secretary sees their branch. Acts are never granted
here: every act still goes through the authority policy, which may refuse what a page
offers (a case the officer's own, say).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, false, true

from bangfu_bot.members.service import Person

# The roles the desk serves, widest first, with how far each sees.
DESK_ROLES: tuple[tuple[str, str], ...] = (
    ("department", "county"),
    ("supervisor", "county"),
    ("committee", "township"),
    ("secretary", "branch"),
)


@dataclass(frozen=True)
class Viewer:
    """A person at the desk: the role the desk serves them in and its reach."""

    person: Person
    role: str
    scope: str  # county | township | branch

    @property
    def id(self) -> int:
        """The person's id."""
        return self.person.id

    @property
    def name(self) -> str:
        """The person's name."""
        return self.person.name

    @property
    def read_only(self) -> bool:
        """The supervision group sees everything and changes nothing."""
        return self.role == "supervisor"

    @property
    def county_wide(self) -> bool:
        """Whether the viewer sees the whole county."""
        return self.scope == "county"

    def sees(self, *, branch_id: int | None, committee_id: int | None) -> bool:
        """Whether a matter in this branch (of this township) is within sight."""
        if self.scope == "county":
            return True
        if self.scope == "township":
            return committee_id is not None and committee_id == self.person.committee_id
        return branch_id is not None and branch_id == self.person.branch_id

    def where(self, branch: Any, committee: Any) -> ColumnElement[bool]:
        """The same test as SQL, on a branch id column and its township's id column."""
        if self.scope == "county":
            return true()
        if self.scope == "township":
            if self.person.committee_id is None:
                return false()
            return committee == self.person.committee_id
        if self.person.branch_id is None:
            return false()
        return branch == self.person.branch_id

    def sees_phone(self) -> bool:
        """Phones in full for those who call members (secretaries, officers, department)."""
        return not self.read_only

    def sees_id_number(self) -> bool:
        """Whole ID numbers only for the department, which files the ledger."""
        return self.role == "department"


def viewer_of(person: Person | None) -> Viewer | None:
    """The desk's view of a person, or None when the desk is not for them."""
    if person is None:
        return None
    for role, scope in DESK_ROLES:
        if person.has(role):
            return Viewer(person=person, role=role, scope=scope)
    return None
