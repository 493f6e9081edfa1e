"""Each merchant's ledger terms: when captured funds become available, the fee schedule
used when the gateway does not report its fee, and the payout schedule. A merchant without
a row has the defaults of flowpay/settings/ledger.py (ledger.services.terms)."""

from django.conf import settings
from django.db import models
from django.db.models import Q


class PayoutSchedule(models.TextChoices):
    MANUAL = "manual"  # payouts only when the merchant asks (POST /payment/payouts)
    DAILY = "daily"  # everything available, every day
    WEEKLY = "weekly"  # everything available, once a week on `payout_weekday`


# A new row starts from the deployment's defaults (read when the row is made).
def default_availability_delay_days() -> int:
    return settings.FLOWPAY_LEDGER_AVAILABILITY_DELAY_DAYS


def default_fee_percent_bps() -> int:
    return settings.FLOWPAY_LEDGER_FEE_PERCENT_BPS


def default_fee_fixed() -> int:
    return settings.FLOWPAY_LEDGER_FEE_FIXED


def default_dispute_fee() -> int:
    return settings.FLOWPAY_LEDGER_DISPUTE_FEE


class MerchantLedgerSettings(models.Model):
    merchant = models.OneToOneField("accounts.Merchant", on_delete=models.PROTECT, related_name="ledger_settings")
    # Days from a capture until its net amount is available to pay out.
    availability_delay_days = models.PositiveSmallIntegerField(default=default_availability_delay_days)
    # The fee of a payment whose gateway reports none: percent (basis points) of the
    # captured amount plus a fixed part, and the fee of a dispute (minor units of the
    # payment's currency).
    fee_percent_bps = models.PositiveIntegerField(default=default_fee_percent_bps)
    fee_fixed = models.BigIntegerField(default=default_fee_fixed)
    dispute_fee = models.BigIntegerField(default=default_dispute_fee)
    payout_schedule = models.CharField(max_length=10, choices=PayoutSchedule.choices, default=PayoutSchedule.MANUAL)
    payout_weekday = models.PositiveSmallIntegerField(default=0, help_text="0 = Monday … 6 = Sunday (weekly schedule)")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "ledger_merchant_settings"
        verbose_name = "merchant ledger settings"
        verbose_name_plural = "merchant ledger settings"
        constraints = [
            models.CheckConstraint(condition=Q(availability_delay_days__lte=90), name="ledger_settings_delay_in_range"),
            models.CheckConstraint(condition=Q(fee_percent_bps__lte=10000), name="ledger_settings_fee_percent_in_range"),
            models.CheckConstraint(condition=Q(fee_fixed__gte=0) & Q(dispute_fee__gte=0), name="ledger_settings_fees_non_negative"),
            models.CheckConstraint(condition=Q(payout_schedule__in=PayoutSchedule.values), name="ledger_settings_schedule_valid"),
            models.CheckConstraint(condition=Q(payout_weekday__lte=6), name="ledger_settings_weekday_valid"),
        ]

    def __str__(self) -> str:
        return f"ledger settings of merchant {self.merchant_id}"
