"""The dead letters: work that stopped and waits for a person, one section per kind, each
row with its last error and attempts, and a bulk replay calling the same services as the
runbook's commands and endpoints (which write the same audit entries):

- failed refunds → refund_retry (`retry_failed_refunds`, POST …/refunds/{id}/retry);
- dead rebill jobs → rebill_job_requeue_dead, then a dispatch (`list_dead_rebills --requeue`);
- dead merchant webhook deliveries → webhook_delivery_resend (POST …/webhook-deliveries/{id}/resend);
- failed inbound gateway events → inbound_event_replay (`replay_webhook_events`).

A replay is idempotent: only rows still in their dead-letter state are replayed, checked
under the row's lock (by the service itself, or here where the service also accepts other
states, such as a delivered webhook's re-send), and the form carries a one-time token, so
replaying the same rows twice has the effect of once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from core.actors import Actor
from core.admin import staff_actor, staff_can
from core.errors import FlowPayError
from core.form_tokens import ALREADY_SUBMITTED, form_token_claim, form_token_issue
from core.permissions import Capability
from gateway_events.models import InboundEvent, InboundEventStatus
from gateway_events.services import inbound_event_replay
from refunds.models import Refund, RefundStatus
from refunds.services.recovery import refund_retry
from subscriptions.models import RebillJob, RebillJobStatus
from subscriptions.services.scheduling import rebill_dispatch, rebill_job_requeue_dead
from webhooks.models import WebhookDelivery
from webhooks.services.deliveries import webhook_delivery_resend

DEAD_LETTER_ROWS = 200  # per section and per replay


@dataclass(frozen=True)
class DeadLetterKind:
    name: str
    title: str
    model: type
    dead_status: str
    read: Capability
    replay: Capability
    call: Callable[[int, Actor], object]
    # The service also replays rows in other states: check the dead-letter state here, under the lock.
    lock_here: bool = False


def _requeue_rebill(pk: int, actor: Actor):
    return rebill_job_requeue_dead(job_id=pk, actor=actor)


KINDS = {
    kind.name: kind for kind in [
        DeadLetterKind("refunds", "Failed refunds", Refund, RefundStatus.FAILED, Capability.BACKOFFICE_REFUNDS,
                       Capability.REFUND_RETRY, lambda pk, actor: refund_retry(refund_id=pk, actor=actor)),
        DeadLetterKind("rebill_jobs", "Dead rebill jobs", RebillJob, RebillJobStatus.DEAD, Capability.SUBSCRIPTION_READ,
                       Capability.REBILL_REQUEUE, _requeue_rebill),
        DeadLetterKind("webhook_deliveries", "Dead webhook deliveries", WebhookDelivery, WebhookDelivery.Status.DEAD,
                       Capability.WEBHOOK_READ, Capability.WEBHOOK_RESEND,
                       lambda pk, actor: webhook_delivery_resend(delivery_id=pk, actor=actor), lock_here=True),
        DeadLetterKind("inbound_events", "Failed gateway events", InboundEvent, InboundEventStatus.FAILED,
                       Capability.INBOX_READ, Capability.INBOX_REPLAY,
                       lambda pk, actor: inbound_event_replay(inbound_event_id=pk, actor=actor), lock_here=True),
    ]
}


def dead_letter_rows(kind: DeadLetterKind):
    queryset = kind.model.objects.filter(status=kind.dead_status)
    related = {"refunds": ["transaction", "merchant"], "rebill_jobs": ["merchant", "invoice"],
               "webhook_deliveries": ["event", "endpoint"], "inbound_events": []}[kind.name]
    return list(queryset.select_related(*related).order_by("-id")[:DEAD_LETTER_ROWS])


@dataclass
class ReplayResult:
    replayed: list[str]
    skipped: list[str]  # no longer in the dead-letter state (replayed already, or moved on)
    refused: list[str]  # the service's refusal, with its message


def _label(row) -> str:
    return str(getattr(row, "public_id", None) or getattr(row, "event_id", None) or row.pk)


def dead_letters_replay(*, kind: DeadLetterKind, ids: list[int], actor: Actor) -> ReplayResult:
    """Replay each row still dead, each in its own database transaction (one refusal neither
    hides nor undoes the others)."""
    result = ReplayResult([], [], [])
    for pk in ids[:DEAD_LETTER_ROWS]:
        try:
            with transaction.atomic():
                rows = kind.model.objects.filter(pk=pk, status=kind.dead_status)
                row = (rows.select_for_update() if kind.lock_here else rows).first()
                if row is None:
                    result.skipped.append(str(pk))
                    continue
                kind.call(pk, actor)
        except FlowPayError as exc:
            result.refused.append(f"{_label(row)}: {exc.message}")
        else:
            result.replayed.append(_label(row))
    if kind.name == "rebill_jobs" and result.replayed:
        transaction.on_commit(rebill_dispatch)
    return result


def dead_letters_page(request, admin_site):
    if not any(staff_can(request, kind.read) for kind in KINDS.values()):
        raise PermissionDenied
    if request.method == "POST":
        return _replay(request)
    sections = [
        {"kind": kind, "rows": dead_letter_rows(kind), "may_replay": staff_can(request, kind.replay)}
        for kind in KINDS.values() if staff_can(request, kind.read)
    ]
    context = {
        **admin_site.each_context(request),
        "title": "Dead letters",
        "sections": sections,
        "form_token": form_token_issue(request),
    }
    return TemplateResponse(request, "admin/dashboard/dead_letters.html", context)


def _replay(request):
    back = reverse("admin:dashboard_dead_letters")
    kind = KINDS.get(request.POST.get("kind", ""))
    if kind is None:
        messages.error(request, "Unknown dead letters: nothing was replayed.")
        return HttpResponseRedirect(back)
    if not staff_can(request, kind.replay):
        raise PermissionDenied
    try:
        ids = sorted({int(value) for value in request.POST.getlist("ids")})
    except ValueError:
        ids = []
    if not ids:
        messages.error(request, "Choose the rows to replay: nothing was replayed.")
        return HttpResponseRedirect(back)
    if not form_token_claim(request):
        messages.warning(request, ALREADY_SUBMITTED)
        return HttpResponseRedirect(back)
    result = dead_letters_replay(kind=kind, ids=ids, actor=staff_actor(request))
    if result.replayed:
        messages.success(request, f"{kind.title}: replayed {', '.join(result.replayed)}.")
    if result.skipped:
        messages.info(request, f"{kind.title}: {len(result.skipped)} no longer dead, left alone.")
    for refusal in result.refused:
        messages.error(request, refusal)
    return HttpResponseRedirect(back)
