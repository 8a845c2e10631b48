"""The order of one bench run: repetitions interleaved so the machine's noise is shared.

Each repetition runs every scenario on both sides, suite then baselines in even
repetitions and baselines then suite in odd ones, so neither side always goes first
into a machine that other work has just left busy or idle.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# The timed comparisons, in the order they run; speakers: the suite with speakers=auto
# against the suite without (the same conversations).
SCENARIOS = ("long", "batch", "clip", "speakers")
ONCE = ("memory",)  # run once after the repetitions, suite only
SIDES = ("suite", "baseline")


@dataclass(frozen=True)
class Step:
    rep: int
    scenario: str
    side: str


def parse_scenarios(spec: str) -> tuple[str, ...]:
    """`long,clip,batch,speakers,memory` (any subset, any order) in the order they run."""
    asked = {s.strip() for s in spec.split(",") if s.strip()}
    unknown = asked - set(SCENARIOS) - set(ONCE)
    if unknown or not asked:
        known = ", ".join((*SCENARIOS, *ONCE))
        raise ValueError(f"--scenarios takes a comma-separated subset of {known}")
    return tuple(s for s in (*SCENARIOS, *ONCE) if s in asked)


def steps(reps: int, scenarios: Sequence[str]) -> list[Step]:
    """Every timed step of the run, in order."""
    out: list[Step] = []
    for rep in range(reps):
        sides = SIDES if rep % 2 == 0 else SIDES[::-1]
        for scenario in (s for s in SCENARIOS if s in scenarios):
            out += [Step(rep, scenario, side) for side in sides]
    return out


def rotated(items: Sequence[str], n: int) -> list[str]:
    """The baseline candidates, starting one further along each repetition."""
    k = n % len(items)
    return [*items[k:], *items[:k]]
