"""Field-level history (django-auditlog) of the payment objects staff can edit in the admin.
The business audit log (audit.AuditEntry) records actions; this records admin edits."""

from auditlog.registry import auditlog

from payments.models import Customer, PaymentMethod

auditlog.register(Customer)
auditlog.register(PaymentMethod)
