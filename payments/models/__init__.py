from payments.models.customers import Customer, PaymentMethod
from payments.models.transactions import (
    CaptureMethod,
    PaymentAttempt,
    Transaction,
    TransactionStatus,
)

__all__ = [
    "CaptureMethod",
    "Customer",
    "PaymentAttempt",
    "PaymentMethod",
    "Transaction",
    "TransactionStatus",
]
