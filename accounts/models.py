"""Merchants and their credentials: API keys (merchants) and personal staff tokens.

Rule: a secret is shown once, at creation. Only its SHA-256 digest is stored, plus a short
clear prefix to recognise it in lists and logs. Keys are 32 random bytes, so a fast digest
is enough (no password-stretching needed) and lookups are one indexed equality.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

from core.models import TimeStampedModel, new_public_id


def _merchant_id() -> str:
    return new_public_id("mer")


class Merchant(TimeStampedModel):
    public_id = models.CharField(max_length=40, unique=True, default=_merchant_id, editable=False)
    name = models.CharField(max_length=200)
    is_active = models.BooleanField(default=True)

    class Meta:
        # The table keeps the name it was created with; the model moved, the data did not.
        db_table = "payments_merchant"
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.public_id})"


class CredentialBase(TimeStampedModel):
    prefix = models.CharField(max_length=24, db_index=True, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    label = models.CharField(max_length=100, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        abstract = True

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def __str__(self) -> str:
        return f"{self.prefix}… ({'active' if self.is_active else 'revoked'})"


class ApiKey(CredentialBase):
    class Environment(models.TextChoices):
        TEST = "test"
        LIVE = "live"

    merchant = models.ForeignKey("accounts.Merchant", on_delete=models.PROTECT, related_name="api_keys")
    environment = models.CharField(max_length=4, choices=Environment.choices, default=Environment.TEST)

    class Meta:
        # The table keeps the name it was created with; the model moved, the data did not.
        db_table = "payments_apikey"
        verbose_name = "API key"
        constraints = [
            models.CheckConstraint(condition=Q(environment__in=["test", "live"]), name="apikey_environment_valid"),
        ]

    @property
    def livemode(self) -> bool:
        """The mode of every object this key creates, and the only mode it sees."""
        return self.environment == self.Environment.LIVE


class StaffToken(CredentialBase):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="staff_tokens")

    class Meta:
        # The table keeps the name it was created with; the model moved, the data did not.
        db_table = "payments_stafftoken"
        verbose_name = "staff token"
