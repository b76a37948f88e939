"""What every bench scenario shares: the run context, results, targets, pinning.

The machines this runs on are shared and noisy, so no absolute figure is ever asserted. Each
figure is printed beside its ratio to a baseline measured in the same run. Targets were set
on a machine where the stateless wechatpy bot (aiohttp + wechatpy's signature check, parse
and text reply) answered about REFERENCE_WECHATPY_RPS pushes a second and bare aiohttp about
REFERENCE_BARE_RPS. A target in seconds or messages a second is scaled by this run's own
wechatpy-bot figure (`Context.scale`), so PASS/FAIL follows from ratios, not from this
machine's speed. Why that baseline and not bare aiohttp: bare aiohttp's request path is
mostly C (llhttp, multidict), and on a fast CPU it speeds up far more than Python code does
(seen: 3.3× the reference while WeRoBot and the wechatpy bot ran 1.6–1.8×). Scaling Python
work by it would ask more of it than the reference did. The ratio to bare aiohttp is still
printed, and "≥ 20 % of bare aiohttp" is judged on it directly.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REFERENCE_BARE_RPS = 6100.0  # bare aiohttp `success`, one core, in the measurements
REFERENCE_WECHATPY_RPS = 3100.0  # aiohttp + wechatpy, plain mode, same measurements
ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Result:
    """One measured figure and its ratio to the same run's baseline."""

    scenario: str
    metric: str
    value: float
    unit: str
    baseline: str = ""  # what `ratio` divides by
    ratio: float | None = None


@dataclass
class Verdict:
    """A target from the issue, judged on ratios."""

    target: str
    passed: bool
    detail: str


@dataclass
class Context:
    """Shared by all scenarios of one `make bench`."""

    workdir: Path
    pg_url: str | None  # postgresql+asyncpg://… of a throw-away database, or None
    bare_rps: float = REFERENCE_BARE_RPS
    wechatpy_rps: float = REFERENCE_WECHATPY_RPS
    quick: bool = False  # smaller data sets (a smoke run, not for the README)
    scale_measured: bool = False  # whether this run measured the wechatpy bot (else: 1.0)
    results: list[Result] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)

    @property
    def scale(self) -> float:
        """How much faster this machine runs Python than the reference (wechatpy-bot ratio)."""
        return self.wechatpy_rps / REFERENCE_WECHATPY_RPS

    @property
    def bare_scale(self) -> float:
        """The same, by bare aiohttp (printed for comparison, not used for targets)."""
        return self.bare_rps / REFERENCE_BARE_RPS

    def add(
        self,
        scenario: str,
        metric: str,
        value: float,
        unit: str,
        *,
        baseline: str = "",
        baseline_value: float | None = None,
    ) -> Result:
        """Record a figure; with a baseline value, its ratio is value / baseline_value."""
        ratio = value / baseline_value if baseline_value else None
        result = Result(scenario, metric, value, unit, baseline, ratio)
        self.results.append(result)
        return result

    def target(self, name: str, passed: bool, detail: str) -> None:
        """Record PASS/FAIL of one target."""
        self.verdicts.append(Verdict(name, passed, detail))

    def seconds_target(self, name: str, seconds: float, limit_s: float) -> None:
        """A target in seconds on the reference machine, judged on this machine's scale."""
        normalised = seconds * self.scale
        self.target(
            name,
            normalised <= limit_s,
            f"{seconds:.2f} s here = {normalised:.2f} s at reference speed (limit {limit_s:g} s)",
        )

    def rate_target(self, name: str, per_s: float, floor_per_s: float) -> None:
        """A target in events a second on the reference machine, judged on this scale."""
        normalised = per_s / self.scale
        self.target(
            name,
            normalised >= floor_per_s,
            f"{per_s:,.0f}/s here = {normalised:,.0f}/s at reference speed "
            f"(floor {floor_per_s:,.0f}/s)",
        )

    def slots_rate_target(
        self, name: str, per_s: float, floor_per_s: float, *, slots: int, latency_s: float
    ) -> None:
        """A target in calls a second made through `slots` calls at once, each waiting
        `latency_s` on the far side. That wait is the same on any machine; only the rest of
        each call's time (both sides' CPU and queueing) is scaled, so a latency-bound rate
        is not divided by how fast this CPU is."""
        per_call = slots / per_s
        rest = max(per_call - latency_s, 0.0)
        normalised = slots / (latency_s + rest * self.scale)
        self.target(
            name,
            normalised >= floor_per_s,
            f"{per_s:,.0f}/s here: {per_call * 1000:.1f} ms a call, "
            f"{latency_s * 1000:.0f} ms of it the far side's wait; with the rest "
            f"×{self.scale:.2f}, {normalised:,.0f}/s at reference speed "
            f"(floor {floor_per_s:,.0f}/s)",
        )

    def as_json(self) -> dict[str, Any]:
        """The whole run, for the JSON file."""
        return {
            "bare_rps": self.bare_rps,
            "wechatpy_rps": self.wechatpy_rps,
            "scale": self.scale,
            "bare_scale": self.bare_scale,
            "quick": self.quick,
            "results": [asdict(r) for r in self.results],
            "verdicts": [asdict(v) for v in self.verdicts],
        }


def cores() -> tuple[set[int], set[int]]:
    """(server cores, load-generator cores): one each where there are two or more."""
    available = sorted(os.sched_getaffinity(0))
    if len(available) < 2:
        return set(available), set(available)
    return {available[0]}, {available[1]}


def pin(cpus: set[int]) -> None:
    """Pin this process (call first thing in a subprocess)."""
    os.sched_setaffinity(0, cpus)


@contextmanager
def stopwatch() -> Iterator[list[float]]:
    """`with stopwatch() as took:` … `took[0]` is the elapsed seconds."""
    took: list[float] = []
    started = time.perf_counter()
    try:
        yield took
    finally:
        took.append(time.perf_counter() - started)


def rss_mb(pid: int) -> float:
    """Resident memory of a process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise ValueError(f"no VmRSS for pid {pid}")
