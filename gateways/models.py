from __future__ import annotations

from django.db import connection, models

from core.lookups import ModelColumns, row_insert_sql


class SimulatorChargeStatus:
    """A SimulatorCharge's status: GatewayPayment's vocabulary, and "refund" for a refund record."""

    AUTHORIZED = "requires_capture"
    SUCCEEDED = "succeeded"
    DECLINED = "failed"
    REQUIRES_ACTION = "requires_action"
    CANCELED = "canceled"
    REFUND = "refund"  # a refund record; flowpay_reference holds the charge it refunds
    # A payout record (flowpay_reference: FlowPay's payout): in transit until its status is
    # first asked, then paid (or failed, with the payout_failure fault).
    PAYOUT_IN_TRANSIT = "payout_in_transit"
    PAYOUT_PAID = "payout_paid"
    PAYOUT_FAILED = "payout_failed"


class SimulatorCharge(models.Model):
    """State of the simulator gateway, kept in the database so that every web and worker
    process sees the same "gateway". It plays the role of the PSP's own records: FlowPay's
    business code never reads it, only the simulator adapter does."""

    reference = models.CharField(max_length=40, unique=True)
    idempotency_key = models.CharField(max_length=255, unique=True)
    flowpay_reference = models.CharField(max_length=64, db_index=True)
    payment_method = models.CharField(max_length=255)
    amount = models.BigIntegerField()
    amount_captured = models.BigIntegerField(default=0)
    amount_refunded = models.BigIntegerField(default=0)
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=20)
    decline_code = models.CharField(max_length=50, blank=True)
    call_count = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        # The table keeps the name it was created with; the model moved, the data did not.
        db_table = "payments_simulatorcharge"

    def __str__(self) -> str:
        return self.reference

    @classmethod
    def create_once(cls, *, idempotency_key: str, defaults: dict) -> SimulatorCharge:
        """Create the record, or return the one already made under this key (and count the
        call): the simulator honours idempotency keys as a PSP does. One statement (INSERT …
        ON CONFLICT DO UPDATE): outside a database transaction it is one by itself."""
        charge = cls(idempotency_key=idempotency_key, **defaults)
        insert, values = row_insert_sql(charge, connection=connection, alias="c")
        quote = connection.ops.quote_name
        returned = ModelColumns(cls, "c", connection)
        sql = (f"{insert} ON CONFLICT ({quote('idempotency_key')}) "
               f"DO UPDATE SET {quote('call_count')} = c.{quote('call_count')} + 1 RETURNING {returned.sql}")
        with connection.cursor() as cursor:
            cursor.execute(sql, values)
            return returned.instance(cursor.fetchone(), using=connection.alias)
