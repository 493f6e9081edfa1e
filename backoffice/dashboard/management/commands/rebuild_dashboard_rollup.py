"""Rebuild the overview's hourly rollup over a range of days (after a deploy onto existing
data, an import, or a correction made outside the services)."""

import datetime as dt

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from backoffice.dashboard.rollup import dashboard_rollup_rebuild


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"'{value}' is not a date (YYYY-MM-DD).") from None


class Command(BaseCommand):
    help = "Re-aggregate the dashboard's hourly rollup from --from to --to (UTC days, inclusive), or the last --days days."

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="start", type=_date, help="first UTC day to rebuild (YYYY-MM-DD)")
        parser.add_argument("--to", dest="end", type=_date, help="last UTC day to rebuild (YYYY-MM-DD, inclusive; default today)")
        parser.add_argument("--days", type=int, help="rebuild the last N days, today included (instead of --from)")

    def handle(self, *args, start, end, days, **options):
        today = timezone.now().date()
        if (start is None) == (days is None):
            raise CommandError("Give either --from (with an optional --to) or --days.")
        if days is not None:
            if days < 1:
                raise CommandError("--days must be at least 1.")
            start = today - dt.timedelta(days=days - 1)
        end = end or today
        if end < start:
            raise CommandError(f"--to ({end}) is before --from ({start}).")
        begin = dt.datetime.combine(start, dt.time.min, tzinfo=dt.UTC)
        finish = dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC)
        result = dashboard_rollup_rebuild(start=begin, end=finish)
        self.stdout.write(f"Rebuilt {start} to {end}: {result.buckets} buckets.")
