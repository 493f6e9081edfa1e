"""Interleaved rounds and their summaries.

Rule: a row's candidate and baseline are measured in the same run, alternately (A B A B …,
each arm's untimed setup just before it), so that the load of a shared machine falls on
both alike; a ratio is computed from the medians of the rounds, and the per-round ratios
give its min–max. Goals are compared and reported, never asserted.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field


@dataclass
class Arm:
    name: str
    run: Callable[[], dict[str, float]]  # timed; returns the round's metrics
    setup: Callable[[], None] | None = None  # untimed, before every run


@dataclass
class Spread:
    median: float
    min: float
    max: float
    values: list[float]

    @classmethod
    def of(cls, values: list[float]) -> Spread:
        return cls(median=statistics.median(values), min=min(values), max=max(values), values=list(values))


@dataclass
class Goal:
    """ratio <= at_most, ratio >= at_least, or both (a band)."""

    at_most: float | None = None
    at_least: float | None = None

    def met(self, value: float) -> bool:
        return (self.at_most is None or value <= self.at_most) and (self.at_least is None or value >= self.at_least)

    def __str__(self) -> str:
        return self.describe("×")

    def describe(self, unit: str) -> str:
        if self.at_most is not None and self.at_least is not None:
            return f"within [{self.at_least:g}, {self.at_most:g}]"
        return f"≤ {self.at_most:g}{unit}" if self.at_most is not None else f"≥ {self.at_least:g}{unit}"


@dataclass
class Ratio:
    """numerator arm's metric / denominator arm's metric, or (`difference`) their
    difference, in the metric's unit (a cost added, e.g. milliseconds at p99)."""

    label: str
    numerator: tuple[str, str]  # (arm, metric)
    denominator: tuple[str, str]
    goal: Goal | None = None
    difference: bool = False


@dataclass
class RatioResult:
    label: str
    value: float  # from the medians
    per_round: Spread
    numerator: str
    denominator: str
    goal: str | None
    met: bool | None
    unit: str = "×"  # "×" for a ratio; the metric's unit (" ms") for a difference


@dataclass
class RowResult:
    id: str
    title: str
    candidate: str
    baseline: str
    rounds: int
    arms: dict[str, dict[str, Spread]]
    ratios: list[RatioResult]
    seconds: float
    sizes: dict = field(default_factory=dict)
    checks: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def interleave(arms: list[Arm], *, rounds: int, log: Callable[[str], None] = print) -> dict[str, list[dict[str, float]]]:
    """Run A B A B … for `rounds` rounds; returns each arm's per-round metrics."""
    samples: dict[str, list[dict[str, float]]] = {arm.name: [] for arm in arms}
    for number in range(1, rounds + 1):
        for arm in arms:
            if arm.setup is not None:
                arm.setup()
            metrics = arm.run()
            samples[arm.name].append(metrics)
            log(f"    round {number}/{rounds} {arm.name}: " + ", ".join(f"{k}={_fmt(v)}" for k, v in metrics.items()))
    return samples


def summarize(samples: dict[str, list[dict[str, float]]]) -> dict[str, dict[str, Spread]]:
    return {
        arm: {metric: Spread.of([round_[metric] for round_ in rounds]) for metric in rounds[0]}
        for arm, rounds in samples.items() if rounds
    }


def ratios(samples: dict[str, list[dict[str, float]]], specs: list[Ratio]) -> list[RatioResult]:
    results = []
    for spec in specs:
        (num_arm, num_metric), (den_arm, den_metric) = spec.numerator, spec.denominator
        nums = [r[num_metric] for r in samples[num_arm]]
        dens = [r[den_metric] for r in samples[den_arm]]
        combine = (lambda a, b: a - b) if spec.difference else _div
        value = combine(statistics.median(nums), statistics.median(dens))
        per_round = Spread.of([combine(n, d) for n, d in zip(nums, dens, strict=True)])
        unit = " " + num_metric.rsplit("_", 1)[-1] if spec.difference else "×"
        goal = spec.goal.describe(unit) if spec.goal else None
        results.append(RatioResult(
            label=spec.label, value=value, per_round=per_round, numerator=f"{num_arm}.{num_metric}",
            denominator=f"{den_arm}.{den_metric}", goal=goal, met=spec.goal.met(value) if spec.goal else None, unit=unit,
        ))
    return results


def nice_number(n: float) -> int:
    """n rounded down to 1, 2 or 5 × a power of ten (at least 10): the sizes calibrated runs use."""
    n = max(10.0, n)
    power = 10 ** math.floor(math.log10(n))
    return int(max(step * power for step in (1, 2, 5) if step * power <= n))


def _div(a: float, b: float) -> float:
    return a / b if b else float("inf")


def _fmt(value: float) -> str:
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return f"{value:.4g}"


class Stopwatch:
    def __enter__(self) -> Stopwatch:
        self.started = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc_info) -> None:
        self.seconds = time.perf_counter() - self.started
