"""Shared machinery of the runbook's management commands (`python manage.py <name>`).

Every runbook command:
- prints a readable table by default (aligned columns under a header) and, with
  `--format json`, exactly one JSON document on stdout: `{"ok": bool, "problems": [...], ...}`
  (`monitor_gateway_health` streams one JSON document per line, one per check);
- exits 0 when it finds nothing wrong and 1 when it finds a problem it was asked to detect,
  after printing its output (`raise SystemExit(1)`);
- reports usage errors (bad flags, unknown ids) as CommandError with exit status 2.

A command subclasses `RunbookCommand` and implements `build_report(**options) -> Report`:
summary fields, tables of rows (dicts keyed by column key) and the problems it found.
Durations on the command line (`30s`, `10m`, `2h`, `1d`, `1w`) parse with `parse_duration`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

# --- durations -------------------------------------------------------------------------
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class DurationError(argparse.ArgumentTypeError, ValueError):
    """A duration that does not parse (argparse shows the message as a usage error)."""


def parse_duration(text: str) -> dt.timedelta:
    """'30s', '10m', '2h', '1d', '1w' (a number and one unit; decimals allowed: '1.5h')
    -> a positive timedelta. Usable as an argparse `type=`."""
    match = _DURATION.match(str(text))
    if not match:
        raise DurationError(f"invalid duration {text!r}: use a number and a unit s, m, h, d or w (e.g. 30s, 10m, 2h, 1d)")
    seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]
    if seconds <= 0:
        raise DurationError(f"invalid duration {text!r}: must be greater than zero")
    return dt.timedelta(seconds=seconds)


def format_duration(delta: dt.timedelta | float | None) -> str:
    """Human form of a duration or an age: '45s', '12m 03s', '2h 05m', '3d 04h'."""
    if delta is None:
        return "-"
    seconds = int(delta.total_seconds() if isinstance(delta, dt.timedelta) else delta)
    if seconds < 0:
        seconds = 0
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours:02d}h"


def positive_int(text: str) -> int:
    """argparse `type=` for counts and limits (1 or more)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {value}")
    return value


# --- cells, tables, reports --------------------------------------------------------------
def format_cell(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dt.datetime):
        return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S %Z") if timezone.is_aware(value) else value.isoformat(" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float | Decimal):
        return f"{value:.1f}"
    if isinstance(value, dt.timedelta):
        return format_duration(value)
    if isinstance(value, list | tuple):
        return ", ".join(format_cell(v) for v in value) or "-"
    return str(value)


@dataclass(frozen=True)
class Column:
    key: str  # the row dict's key (also its JSON key)
    header: str
    fmt: Callable[[Any], str] | None = None  # table rendering of the value (default format_cell)
    align: str | None = None  # "left" | "right"; default: right for numbers

    def render(self, value: Any) -> str:
        return (self.fmt or format_cell)(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def render_table(columns: Sequence[Column], rows: Sequence[dict]) -> list[str]:
    """Aligned columns under a header line and a rule; numbers right-aligned."""
    cells = [[column.render(row.get(column.key)) for column in columns] for row in rows]
    widths = [max([len(column.header), *(len(r[i]) for r in cells)]) for i, column in enumerate(columns)]
    right = []
    for column in columns:
        values = [row.get(column.key) for row in rows if row.get(column.key) is not None]
        right.append(column.align == "right" or (column.align is None and bool(values) and all(map(_is_number, values))))

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if r else v.ljust(w) for v, w, r in zip(values, widths, right, strict=True)]
        return "  ".join(parts).rstrip()

    return [line([c.header for c in columns]), "  ".join("-" * w for w in widths), *(line(r) for r in cells)]


@dataclass
class Table:
    key: str  # JSON key of the rows
    title: str
    columns: list[Column]
    rows: list[dict]
    empty: str = "(none)"


@dataclass
class Report:
    """What a runbook command found: summary fields, tables and problems."""

    fields: list[tuple[str, str, Any, str | None]] = field(default_factory=list)  # (json key, label, value, display)
    tables: list[Table] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # table output only
    ok_message: str = "OK: no problem found."

    def add_field(self, key: str, label: str, value: Any, display: str | None = None, *, show: bool = True) -> None:
        """`value` goes into the JSON document; `display` (default: the value formatted)
        is what the table output shows, unless `show` is False (JSON only)."""
        self.fields.append((key, label if show else "", value, display))

    def add_table(self, key: str, title: str, columns: list[Column], rows: list[dict], empty: str = "(none)") -> None:
        self.tables.append(Table(key=key, title=title, columns=columns, rows=rows, empty=empty))

    def problem(self, message: str) -> None:
        self.problems.append(message)

    def note(self, message: str) -> None:
        self.notes.append(message)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_json(self) -> dict:
        document: dict[str, Any] = {"ok": self.ok, "problems": list(self.problems)}
        for key, _label, value, _display in self.fields:
            document[key] = value
        for table in self.tables:
            document[table.key] = table.rows
        return document

    def as_text(self) -> list[str]:
        lines: list[str] = []
        shown = [(label, value, display) for _key, label, value, display in self.fields if label]
        if shown:
            width = max(len(label) for label, _value, _display in shown) + 1
            lines += [
                f"{(label + ':').ljust(width)} {format_cell(value) if display is None else display}"
                for label, value, display in shown
            ]
        for table in self.tables:
            if lines:
                lines.append("")
            if table.title:
                lines.append(table.title)
            lines += render_table(table.columns, table.rows) if table.rows else [f"  {table.empty}"]
        if self.notes:
            lines.append("")
            lines += self.notes
        lines.append("")
        if self.problems:
            lines += [f"PROBLEM: {message}" for message in self.problems]
        else:
            lines.append(self.ok_message)
        return lines


def to_json(document: Any, *, indent: int | None = 2) -> str:
    return json.dumps(document, cls=DjangoJSONEncoder, indent=indent, ensure_ascii=False)


class RunbookCommand(BaseCommand):
    """Base of the runbook commands: `--format table|json`, rendering, and the exit rule."""

    PROBLEM_EXIT_CODE = 1
    USAGE_EXIT_CODE = 2

    def create_parser(self, prog_name, subcommand, **kwargs):
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.add_argument(
            "--format", choices=["table", "json"], default="table",
            help="table (default): aligned columns for people; json: one JSON document on stdout",
        )
        return parser

    def handle(self, *args, **options):
        self.output_format = options["format"]
        report = self.build_report(**options)
        self.emit(report)
        self.exit_for(not report.ok)

    # --- for subclasses -------------------------------------------------------------
    def build_report(self, **options) -> Report:
        raise NotImplementedError

    @property
    def json_output(self) -> bool:
        return getattr(self, "output_format", "table") == "json"

    def emit(self, report: Report) -> None:
        if self.json_output:
            self.stdout.write(to_json(report.as_json()))
        else:
            for line in report.as_text():
                self.stdout.write(line)

    def exit_for(self, problem: bool) -> None:
        """Call after the output is written: exit 1 when a problem was found."""
        self.stdout.flush()
        if problem:
            raise SystemExit(self.PROBLEM_EXIT_CODE)

    def usage_error(self, message: str) -> CommandError:
        return CommandError(message, returncode=self.USAGE_EXIT_CODE)

