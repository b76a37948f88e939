"""The kinds of occasion a visit campaign is for, and how a household got on its list."""

from __future__ import annotations

from enum import StrEnum


class Occasion(StrEnum):
    """What a campaign is for (走访慰问的由头)."""

    SPRING_FESTIVAL = "spring_festival"  # 春节: lunar 1/1, the main round
    JULY_FIRST = "july_first"  # 七一: party founding day
    DOUBLE_NINTH = "double_ninth"  # 重阳: lunar 9/9, for the elderly
    CUSTOM = "custom"  # 其他: a named occasion on a given date
    EVENT = "event"  # 临时慰问: illness, disaster or a death, for one household


FESTIVALS = (Occasion.SPRING_FESTIVAL, Occasion.JULY_FIRST, Occasion.DOUBLE_NINTH)


class Source(StrEnum):
    """Why a household is on a campaign's list."""

    LEDGER = "ledger"  # an active entry in the year's ledger (台账)
    PRE_1949 = "pre_1949"  # joined before 1949-10-01 (建国前老党员), always listed
    EVENT = "event"  # the one household of an event-triggered visit


class AssignedAs(StrEnum):
    """Who a household's visit went to, and by which rule."""

    PAIRED_CADRE = "paired_cadre"  # the ledger's 结对帮扶干部, found on the roster
    SECRETARY = "secretary"  # the branch secretary, when no paired cadre is on the roster
    OPENER = "opener"  # the secretary who opened an event-triggered visit
    NOBODY = "nobody"  # no secretary in the branch: the township officer must arrange it
