from django.db import IntegrityError, transaction

from accounts.models import Merchant
from audit.actions import AuditAction
from audit.services import audit_record
from core.actors import Actor
from core.errors import InvalidRequest
from core.idempotency import idempotency_created
from payments.models import Customer, PaymentMethod


@transaction.atomic
def customer_create(
    *, merchant: Merchant, email: str = "", name: str = "", metadata: dict | None = None, actor: Actor,
    livemode: bool = False, idempotency_record_id: int | None = None,
) -> Customer:
    """`livemode`: the creating API key's environment; only keys of that mode see the customer."""
    existing = idempotency_created(Customer, record_id=idempotency_record_id)
    if existing is not None:  # a crashed request re-run under its Idempotency-Key
        return existing
    customer = Customer.objects.create(
        merchant=merchant, livemode=livemode, email=email, name=name, metadata=metadata or {},
        idempotency_record_id=idempotency_record_id,
    )
    audit_record(actor=actor, action=AuditAction.CUSTOMER_CREATE, target=customer)
    return customer


def payment_method_attach(
    *, customer: Customer, gateway: str, gateway_token: str, brand: str = "", last4: str = "", actor: Actor,
    idempotency_record_id: int | None = None,
) -> PaymentMethod:
    """Save a gateway token for a customer, in the customer's mode. The same token twice is
    the same method, and so is a request re-run under the Idempotency-Key that saved it."""
    existing = idempotency_created(PaymentMethod, record_id=idempotency_record_id)
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            method = PaymentMethod.objects.create(
                merchant_id=customer.merchant_id, customer=customer, livemode=customer.livemode, gateway=gateway,
                gateway_token=gateway_token, brand=brand, last4=last4, idempotency_record_id=idempotency_record_id,
            )
            audit_record(actor=actor, action=AuditAction.PAYMENT_METHOD_ATTACH, target=method, details={"gateway": gateway, "customer": customer.public_id})
            return method
    except IntegrityError:
        existing = PaymentMethod.objects.filter(customer=customer, gateway=gateway, gateway_token=gateway_token).first()
        if existing is None:
            raise InvalidRequest("This payment method could not be saved.", param="token") from None
        return existing
