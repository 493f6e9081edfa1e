from payments.models.credentials import ApiKey, StaffToken
from payments.models.customers import Customer, PaymentMethod
from payments.models.idempotency import IdempotencyRecord
from payments.models.inbound import InboundEvent, InboundEventStatus
from payments.models.merchants import Merchant
from payments.models.simulator import SimulatorCharge
from payments.models.transactions import (
    CaptureMethod,
    PaymentAttempt,
    Transaction,
    TransactionStatus,
)

__all__ = [
    "ApiKey",
    "CaptureMethod",
    "Customer",
    "IdempotencyRecord",
    "InboundEvent",
    "InboundEventStatus",
    "Merchant",
    "PaymentAttempt",
    "PaymentMethod",
    "SimulatorCharge",
    "StaffToken",
    "Transaction",
    "TransactionStatus",
]
