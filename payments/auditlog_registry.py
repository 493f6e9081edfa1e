"""Field-level history (django-auditlog) of the objects staff can edit in the admin. The
business audit log (audit.AuditEntry) records actions; this records admin edits."""

from auditlog.registry import auditlog
from django.contrib.auth import get_user_model

from payments.models import ApiKey, Customer, Merchant, PaymentMethod, StaffToken

auditlog.register(Merchant)
auditlog.register(Customer)
auditlog.register(PaymentMethod)
auditlog.register(ApiKey, exclude_fields=["key_hash"])
auditlog.register(StaffToken, exclude_fields=["key_hash"])
auditlog.register(get_user_model(), exclude_fields=["password", "last_login"])
