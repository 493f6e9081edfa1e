"""Merchant webhook deliveries: list them (dead-lettered by default) and re-send.

    python manage.py webhook_deliveries [--status dead|retrying|pending|succeeded|all]
        [--merchant mer_…] [--resend whd_… | --resend-dead] [--limit N] [--format table|json]

Exit status (core.cli): 1 when dead deliveries are listed (or a re-send was refused),
0 otherwise, 2 for usage errors.
"""

from django.core.management.base import CommandError

from core.actors import Actor
from core.cli import Column, Report, RunbookCommand, positive_int
from core.errors import FlowPayError
from webhooks.models import WebhookDelivery
from webhooks.services.deliveries import webhook_delivery_resend

COLUMNS = [
    Column("id", "DELIVERY"), Column("event", "EVENT"), Column("type", "TYPE"), Column("endpoint", "ENDPOINT"),
    Column("url", "URL"), Column("status", "STATUS"), Column("attempts", "ATTEMPTS"), Column("lastError", "LAST ERROR"),
    Column("created", "CREATED"),
]


def _row(delivery: WebhookDelivery) -> dict:
    return {
        "id": delivery.public_id, "event": delivery.event.public_id, "type": delivery.event.type,
        "endpoint": delivery.endpoint.public_id, "url": delivery.endpoint.url, "merchant": delivery.endpoint.merchant.public_id,
        "status": delivery.status, "attempts": delivery.attempts, "lastStatusCode": delivery.last_status_code,
        "lastError": delivery.last_error or None, "created": delivery.created_at,
    }


class Command(RunbookCommand):
    help = "List merchant webhook deliveries (dead-lettered by default) and re-send them."

    def add_arguments(self, parser):
        parser.add_argument("--status", default="dead", choices=[*WebhookDelivery.Status.values, "all"])
        parser.add_argument("--merchant", help="a merchant id (mer_…)")
        parser.add_argument("--limit", type=positive_int, default=100)
        resend = parser.add_mutually_exclusive_group()
        resend.add_argument("--resend", metavar="DELIVERY_ID", help="re-send one delivery (whd_…)")
        resend.add_argument("--resend-dead", action="store_true", help="re-send every listed dead delivery")

    def build_report(self, *, status, merchant, limit, resend, resend_dead, **options) -> Report:
        actor = Actor.system("manage.py webhook_deliveries")
        report = Report(ok_message="OK: no dead webhook deliveries.")
        if resend:
            delivery = WebhookDelivery.objects.filter(public_id=resend).first()
            if delivery is None:
                raise CommandError(f"No such webhook delivery: {resend}")
            try:
                webhook_delivery_resend(delivery_id=delivery.pk, actor=actor)
                report.add_field("resent", "Re-sent", [resend])
            except FlowPayError as exc:
                report.problem(exc.message)
            return report
        query = WebhookDelivery.objects.select_related("event", "endpoint__merchant").order_by("-id")
        if status != "all":
            query = query.filter(status=status)
        if merchant:
            query = query.filter(endpoint__merchant__public_id=merchant)
        deliveries = list(query[:limit])
        report.add_table("deliveries", f"Deliveries ({status})", COLUMNS, [_row(d) for d in deliveries])
        if resend_dead:
            resent = []
            for delivery in deliveries:
                if delivery.status == WebhookDelivery.Status.DEAD:
                    webhook_delivery_resend(delivery_id=delivery.pk, actor=actor)
                    resent.append(delivery.public_id)
            report.add_field("resent", "Re-sent", resent, str(len(resent)))
        elif any(d.status == WebhookDelivery.Status.DEAD for d in deliveries):
            dead = sum(d.status == WebhookDelivery.Status.DEAD for d in deliveries)
            report.problem(f"{dead} dead webhook deliver(y/ies); re-send with --resend-dead or --resend whd_…")
        return report
