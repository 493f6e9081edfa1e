"""Rebill jobs in the dead letter: jobs that failed for non-payment reasons (exceptions,
bad data, workers dying) FLOWPAY_REBILL_MAX_ATTEMPTS times.

    python manage.py list_dead_rebills [--format table|json] [--requeue JOB_ID | --requeue-all]

Exit status: 1 when dead jobs exist (the problem this command detects), 0 when there are
none. With --requeue / --requeue-all the jobs are put back in their queue (audited as this
command) and dispatched; the exit status is then 0 if every one was re-queued, 1 otherwise.
Re-running a job is safe: its charge key is the same, so nothing is charged twice.
"""

import json

from django.core.management.base import BaseCommand, CommandError

from core.actors import Actor
from core.errors import FlowPayError
from subscriptions.models import RebillJob
from subscriptions.selectors import rebill_jobs_dead
from subscriptions.services.scheduling import rebill_dispatch, rebill_job_requeue_dead


def job_row(job: RebillJob) -> dict:
    return {
        "id": job.public_id,
        "merchant": job.merchant.public_id,
        "subscription": job.subscription.public_id,
        "invoice": job.invoice.public_id,
        "queue": job.queue,
        "periodStart": job.period_start.isoformat(),
        "errors": job.error_count,
        "leases": job.leases,
        "lastError": job.last_error,
        "deadAt": job.dead_at.isoformat() if job.dead_at else None,
    }


def _table(rows: list[dict]) -> str:
    headers = ["ID", "MERCHANT", "INVOICE", "QUEUE", "ERRORS", "DEAD AT", "LAST ERROR"]
    cells = [
        [r["id"], r["merchant"], r["invoice"], r["queue"], str(r["errors"]), (r["deadAt"] or "")[:19],
         " ".join(r["lastError"].split())[:60]]
        for r in rows
    ]
    widths = [max([len(h), *(len(c[i]) for c in cells)]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(cell, widths, strict=True)).rstrip() for cell in cells]
    return "\n".join(lines)


class Command(BaseCommand):
    help = "List dead-lettered rebill jobs (exit 1 when there are any); optionally re-queue them."

    def add_arguments(self, parser):
        parser.add_argument("--format", choices=["table", "json"], default="table")
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--requeue", metavar="JOB_ID", help="re-queue one dead job (rbj_…)")
        group.add_argument("--requeue-all", action="store_true", help="re-queue every dead job")

    def handle(self, *args, **options):
        jobs = list(rebill_jobs_dead())
        if options["requeue"]:
            jobs = [job for job in jobs if job.public_id == options["requeue"]]
            if not jobs:
                raise CommandError(f"No dead rebill job {options['requeue']!r}.")
        rows = [job_row(job) for job in jobs]
        requeue = bool(options["requeue"] or options["requeue_all"])
        failed = []
        if requeue:
            actor = Actor.system("list_dead_rebills")
            for job, row in zip(jobs, rows, strict=True):
                try:
                    rebill_job_requeue_dead(job_id=job.pk, actor=actor)
                    row["requeued"] = True
                except FlowPayError as exc:
                    row["requeued"], row["requeueError"] = False, exc.message
                    failed.append(job.public_id)
            rebill_dispatch()
        if options["format"] == "json":
            self.stdout.write(json.dumps({"deadJobs": rows, "count": len(rows)}, indent=2))
        elif rows:
            self.stdout.write(_table(rows))
            verb = "re-queued" if requeue else "dead"
            self.stdout.write(f"\n{len(rows) - len(failed)} rebill job(s) {verb}." if requeue else f"\n{len(rows)} {verb} rebill job(s).")
        else:
            self.stdout.write("No dead rebill jobs.")
        if (requeue and failed) or (not requeue and rows):
            raise SystemExit(1)
