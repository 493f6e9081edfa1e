"""Field-level history (django-auditlog) of merchants, their credentials and staff users as
edited in the admin. The business audit log (audit.AuditEntry) records actions; this records
admin edits. Secret digests and passwords are never part of the history."""

from auditlog.registry import auditlog
from django.contrib.auth import get_user_model

from accounts.models import ApiKey, Merchant, StaffToken

auditlog.register(Merchant)
auditlog.register(ApiKey, exclude_fields=["key_hash"])
auditlog.register(StaffToken, exclude_fields=["key_hash"])
auditlog.register(get_user_model(), exclude_fields=["password", "last_login"])
