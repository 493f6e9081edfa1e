"""Changing a merchant's ledger terms (fee schedule, availability delay, payout schedule),
from the admin: saved and audited together. A change applies to movements from then on;
what is posted keeps the terms it was posted with."""

from __future__ import annotations

from django.db import transaction
from django.forms.models import model_to_dict

from audit.actions import AuditAction
from audit.services import audit_record
from core.actors import Actor, ActorType
from core.errors import PermissionDenied
from core.permissions import Capability, roles_can
from ledger.models import MerchantLedgerSettings

FIELDS = ["availability_delay_days", "fee_percent_bps", "fee_fixed", "dispute_fee", "payout_schedule", "payout_weekday"]


@transaction.atomic
def merchant_ledger_settings_save(*, settings_row: MerchantLedgerSettings, actor: Actor) -> MerchantLedgerSettings:
    if actor.type == ActorType.STAFF and not roles_can(actor.roles, Capability.LEDGER_ADJUST):
        raise PermissionDenied("Changing a merchant's ledger terms needs the finance or admin role.")
    before = None
    if settings_row.pk is not None:
        previous = MerchantLedgerSettings.objects.select_for_update().filter(pk=settings_row.pk).first()
        before = model_to_dict(previous, fields=FIELDS) if previous else None
    settings_row.full_clean()
    settings_row.save()
    audit_record(actor=actor, action=AuditAction.LEDGER_SETTINGS_UPDATE, target=settings_row,
                 details={"before": before, "after": model_to_dict(settings_row, fields=FIELDS)})
    return settings_row
