from django.db import transaction

from accounts.models import Merchant
from audit.actions import AuditAction
from audit.services import audit_record
from core.actors import Actor
from core.errors import InvalidState
from core.idempotency import idempotency_created
from subscriptions.models import Plan, SubscriptionSettings


@transaction.atomic
def plan_create(
    *, merchant: Merchant, name: str, amount: int, currency: str, interval: str, interval_count: int = 1,
    trial_days: int = 0, metadata: dict | None = None, actor: Actor, livemode: bool = False,
    idempotency_record_id: int | None = None,
) -> Plan:
    """`livemode`: the creating API key's environment; only subscriptions of that mode use it."""
    existing = idempotency_created(Plan, record_id=idempotency_record_id)
    if existing is not None:  # a crashed request re-run under its Idempotency-Key
        return existing
    plan = Plan.objects.create(
        merchant=merchant, livemode=livemode, name=name, amount=amount, currency=currency, interval=interval,
        interval_count=interval_count, trial_days=trial_days, metadata=metadata or {},
        idempotency_record_id=idempotency_record_id,
    )
    audit_record(
        actor=actor, action=AuditAction.PLAN_CREATE, target=plan,
        details={"amount": amount, "currency": currency, "interval": interval, "interval_count": interval_count,
                 "trial_days": trial_days},
    )
    return plan


@transaction.atomic
def plan_deactivate(*, plan_id: int, actor: Actor) -> Plan:
    """A deactivated plan takes no new subscriptions; existing ones keep being billed."""
    plan = Plan.objects.select_for_update().get(pk=plan_id)
    if not plan.active:
        raise InvalidState(f"Plan {plan.public_id} is already inactive.")
    plan.active = False
    plan.save(update_fields=["active", "updated_at"])
    audit_record(actor=actor, action=AuditAction.PLAN_DEACTIVATE, target=plan)
    return plan


@transaction.atomic
def subscription_settings_update(*, merchant: Merchant, dunning_final_action: str, actor: Actor) -> SubscriptionSettings:
    settings_row, _ = SubscriptionSettings.objects.select_for_update().get_or_create(merchant=merchant)
    previous = settings_row.dunning_final_action
    settings_row.dunning_final_action = dunning_final_action
    settings_row.save()
    audit_record(
        actor=actor, action=AuditAction.SUBSCRIPTION_SETTINGS_UPDATE, target=settings_row, merchant_id=merchant.pk,
        details={"dunning_final_action": dunning_final_action, "previous": previous},
    )
    return settings_row
