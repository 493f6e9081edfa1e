"""Replay inbound gateway webhook events from the inbox.

    python manage.py replay_webhook_events --failed [--gateway stripe] [--wait 30] [--format table|json]
    python manage.py replay_webhook_events --id evt_1Nx… --id 42      (gateway event ids or inbox ids)
    python manage.py replay_webhook_events --stalled [--older-than 10m]
    python manage.py replay_webhook_events --failed --dry-run          (list, replay nothing)

Each selected event is queued again for `payments.process_inbound_event` (inbound_event_replay,
audited as this command): a failed one (or, named with --id, an ignored one) goes back to
`received`; a stalled one (received long ago, or processing past its lease) is queued as it
is. Replaying is always safe: an event's effects are applied at most once.

Exit status (core.cli): 0 when every selected event was queued (or nothing was selected);
1 when some event could not be queued, or, with --wait, when some event is still failed (or
not finished) when the wait ends; 2 for usage errors (no selection, unknown or processed ids).
Without --wait the command does not wait for the worker: the table shows the status right
after queueing.
"""

import time

from core.actors import Actor
from core.cli import Column, Report, RunbookCommand, format_duration, parse_duration
from core.errors import FlowPayError
from gateway_events.models import InboundEvent, InboundEventStatus
from gateway_events.services import InboxQueueError, inbound_event_replay, inbound_events_stalled
from gateways.registry import GATEWAY_CLASSES

E = InboundEventStatus
DEFAULT_STALLED = "10m"
ID_REPLAYABLE = (E.FAILED, E.IGNORED, E.RECEIVED, E.PROCESSING)


def _one_line(text: str | None, limit: int = 60) -> str:
    flat = " ".join((text or "").split()) or "-"
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


COLUMNS = [
    Column("id", "ID"), Column("gateway", "GATEWAY"), Column("eventId", "EVENT"), Column("type", "TYPE"),
    Column("previousStatus", "WAS"), Column("attempts", "ATTEMPTS"), Column("error", "ERROR", fmt=_one_line),
    Column("queued", "QUEUED"), Column("status", "NOW"), Column("note", "NOTE", fmt=_one_line),
]


def event_row(row: InboundEvent, *, previous_status: str, queued: bool | None, problem: str | None = None) -> dict:
    return {
        "id": row.pk,
        "gateway": row.gateway,
        "eventId": row.event_id,
        "type": row.type,
        "objectReference": row.object_reference or None,
        "previousStatus": previous_status,
        "status": row.status,
        "attempts": row.attempts,
        "error": problem or row.error or None,
        "note": row.note or None,
        "queued": queued,
        "receivedAt": row.received_at,
        "processedAt": row.processed_at,
    }


class Command(RunbookCommand):
    help = (
        "Queue inbound gateway webhook events again: --failed, --stalled, or --id (repeatable). "
        "Exits 1 when some could not be queued or, with --wait, when some are still failed."
    )

    def add_arguments(self, parser):
        parser.add_argument("--failed", action="store_true", help="every failed event (see --gateway)")
        parser.add_argument("--stalled", action="store_true",
                            help="events never processed: received longer than --older-than ago, or processing past their lease")
        parser.add_argument("--older-than", type=parse_duration, default=parse_duration(DEFAULT_STALLED), metavar="DURATION",
                            help=f"with --stalled: how old a received event must be (default {DEFAULT_STALLED})")
        parser.add_argument("--id", action="append", default=[], metavar="ID",
                            help="an inbox id or the gateway's event id (repeatable); failed, ignored or stalled events")
        parser.add_argument("--gateway", choices=sorted(GATEWAY_CLASSES), help="only this gateway's events")
        parser.add_argument("--limit", type=int, default=1000, help="at most this many events (default 1000)")
        parser.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                            help="wait up to this long for the queued events to be processed, then report their status")
        parser.add_argument("--dry-run", action="store_true", help="list the events that would be replayed, queue nothing")

    def build_report(self, *, failed: bool, stalled: bool, older_than, id: list[str], gateway: str | None,
                     limit: int, wait: float, dry_run: bool, **options) -> Report:
        if not (failed or stalled or id):
            raise self.usage_error("say what to replay: --failed, --stalled or --id ID")
        rows = self._select(failed=failed, stalled=stalled, older_than=older_than, ids=id, gateway=gateway, limit=limit)
        report = Report(ok_message=(f"OK: {len(rows)} event(s) {'would be ' if dry_run else ''}queued again."
                                    if rows else "OK: no events to replay."))
        report.add_field("selected", "Selected", len(rows))
        if stalled:
            report.add_field("olderThanSeconds", "Stalled after", int(older_than.total_seconds()), format_duration(older_than))
        if dry_run:
            report.add_field("dryRun", "Dry run", True)
            report.add_table("events", "Would replay", COLUMNS,
                             [event_row(r, previous_status=r.status, queued=None) for r in rows], empty="(nothing to replay)")
            return report

        actor = Actor.system("replay_webhook_events")
        results: list[tuple[InboundEvent, str, bool, str | None]] = []
        for row in rows:
            previous = row.status
            try:
                replayed = inbound_event_replay(inbound_event_id=row.pk, actor=actor)
            except (FlowPayError, InboxQueueError) as exc:
                message = getattr(exc, "message", None) or str(exc)
                results.append((InboundEvent.objects.get(pk=row.pk), previous, False, message))
                report.problem(f"event {row.pk} ({row.gateway} {row.event_id}) could not be queued: {message}")
            else:
                results.append((replayed, previous, True, None))
        if wait > 0:
            results = self._wait(results, wait)
        table = [event_row(r, previous_status=previous, queued=queued, problem=problem) for r, previous, queued, problem in results]
        report.add_table("events", "Replayed", COLUMNS, table, empty="(nothing to replay)")
        queued = sum(1 for _r, _p, ok, _e in results if ok)
        report.add_field("queued", "Queued", queued, f"{queued} of {len(results)}")
        if wait > 0:
            still_failed = [r for r, _p, ok, _e in results if ok and r.status == E.FAILED]
            unfinished = [r for r, _p, ok, _e in results if ok and r.status in (E.RECEIVED, E.PROCESSING)]
            report.add_field("stillFailed", "Still failed", len(still_failed))
            report.add_field("unfinished", "Not finished", len(unfinished))
            for r in still_failed:
                report.problem(f"event {r.pk} ({r.gateway} {r.event_id}) failed again: {r.error}")
            if unfinished:
                report.problem(f"{len(unfinished)} event(s) not processed within {wait:g}s (is a worker consuming the payments queue?)")
        return report

    def _select(self, *, failed, stalled, older_than, ids, gateway, limit) -> list[InboundEvent]:
        selected: dict[int, InboundEvent] = {}
        scope = InboundEvent.objects.all()
        if gateway:
            scope = scope.filter(gateway=gateway)
        if ids:
            numbers = [int(v) for v in ids if v.isdigit()]
            names = [v for v in ids if not v.isdigit()]
            found = list(scope.filter(pk__in=numbers)) + list(scope.filter(event_id__in=names))
            known = {str(r.pk) for r in found} | {r.event_id for r in found}
            missing = [v for v in ids if v not in known]
            if missing:
                raise self.usage_error(f"no such inbound event: {', '.join(missing)}")
            done = [f"{r.pk} ({r.status})" for r in found if r.status not in ID_REPLAYABLE]
            if done:
                raise self.usage_error(f"already processed, nothing to replay: {', '.join(done)}")
            selected.update({r.pk: r for r in found})
        if failed:
            selected.update({r.pk: r for r in scope.filter(status=E.FAILED).order_by("received_at", "id")[:limit]})
        if stalled:
            stale = inbound_events_stalled(older_than=older_than)
            if gateway:
                stale = stale.filter(gateway=gateway)
            selected.update({r.pk: r for r in stale.order_by("received_at", "id")[:limit]})
        return sorted(selected.values(), key=lambda r: (r.received_at, r.pk))[:limit]

    @staticmethod
    def _wait(results, seconds: float):
        deadline = time.monotonic() + seconds
        pending = {r.pk for r, _p, ok, _e in results if ok}
        while pending and time.monotonic() < deadline:
            finished = InboundEvent.objects.filter(pk__in=pending).exclude(status__in=[E.RECEIVED, E.PROCESSING])
            pending -= set(finished.values_list("pk", flat=True))
            if pending:
                time.sleep(0.2)
        fresh = {r.pk: r for r in InboundEvent.objects.filter(pk__in=[r.pk for r, *_ in results])}
        return [(fresh[r.pk], previous, ok, problem) for r, previous, ok, problem in results]
