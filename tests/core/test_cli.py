"""core.cli, the base of the runbook commands: durations parsed in one place, usage errors.

Like every runbook command: a readable table by default, one JSON document with --format
json, exit status 1 when it finds the problem it looks for and 0 when there is none,
usage errors as CommandError (tests/support/commands.py runs them)."""

import datetime as dt

import pytest
from django.core.management import CommandError

from core.cli import format_duration, parse_duration
from tests.support.commands import run

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("simulator_only")]


# --- core.cli -------------------------------------------------------------------------
def test_durations_parse_in_one_place():
    assert parse_duration("30s") == dt.timedelta(seconds=30)
    assert parse_duration("10m") == dt.timedelta(minutes=10)
    assert parse_duration("2h") == dt.timedelta(hours=2)
    assert parse_duration("1d") == dt.timedelta(days=1)
    assert parse_duration("1.5h") == dt.timedelta(minutes=90)
    for bad in ("", "10", "m", "-5m", "0s", "10 minutes", "1h30m"):
        with pytest.raises(ValueError):
            parse_duration(bad)
    assert [format_duration(s) for s in (5, 125, 7500, 90000)] == ["5s", "2m 05s", "2h 05m", "1d 01h"]


def test_an_unparsable_duration_or_a_bad_choice_is_a_usage_error():
    with pytest.raises(CommandError, match="invalid duration"):
        run("query_failed_transactions", "--since", "yesterday")
    with pytest.raises(CommandError):
        run("query_failed_transactions", "--last-hour", "--since", "2h")
    with pytest.raises(CommandError):
        run("gateway_health_check", "--format", "xml")
