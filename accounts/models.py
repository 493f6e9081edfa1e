"""Merchants and their credentials: API keys (merchants) and personal staff tokens.

Rule: a secret is shown once, at creation. Only its SHA-256 digest is stored, plus a short
clear prefix to recognise it in lists and logs. Keys are 32 random bytes, so a fast digest
is enough (no password-stretching needed) and lookups are one indexed equality.
"""

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import F, Q

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


# The longest a staff token may live, whatever the settings say (PCI DSS: short-lived
# credentials); FLOWPAY_STAFF_TOKEN_MAX_DAYS may only lower it.
STAFF_TOKEN_HARD_MAX_LIFETIME = timedelta(days=30)


class StaffToken(CredentialBase):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="staff_tokens")
    # Past this instant the token answers 401 staff_token_expired.
    expires_at = models.DateTimeField(editable=False)
    # Where the token was last used from (written at most once a minute per token and
    # address, like last_used_at).
    last_used_ip = models.GenericIPAddressField(null=True, blank=True, editable=False)

    class Meta:
        # The table keeps the name it was created with; the model moved, the data did not.
        db_table = "payments_stafftoken"
        verbose_name = "staff token"
        constraints = [
            models.CheckConstraint(
                condition=Q(expires_at__gt=F("created_at")) & Q(expires_at__lte=F("created_at") + STAFF_TOKEN_HARD_MAX_LIFETIME),
                name="stafftoken_lifetime_within_30_days",
            ),
        ]

    def is_expired(self, now) -> bool:
        return self.expires_at <= now


class PasswordHistoryEntry(models.Model):
    """A staff user's password hashes, newest last: a new password may not be one of the
    last few (the validator option `remembered`, 4: accounts.passwords). Only hashes are
    kept, as Django stores them; never a password."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="password_history")
    password = models.CharField(max_length=256, editable=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "password history entries"


class StaffLockout(models.Model):
    """One lockout of a username (django-axes decides when; this row is what staff see, and
    what is released, audited, by an admin or when its time is up). At most one open lockout
    per username."""

    username = models.CharField(max_length=150, db_index=True)
    locked_at = models.DateTimeField()
    locked_until = models.DateTimeField()
    failures = models.PositiveIntegerField()
    origin_ip = models.GenericIPAddressField(null=True, blank=True)
    released_at = models.DateTimeField(null=True, blank=True)
    released_by = models.CharField(max_length=150, blank=True)
    release_reason = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-locked_at", "-id"]
        verbose_name = "staff lockout"
        constraints = [
            models.UniqueConstraint(fields=["username"], condition=Q(released_at__isnull=True), name="stafflockout_one_open_per_username"),
            models.CheckConstraint(condition=Q(locked_until__gt=F("locked_at")), name="stafflockout_until_after_locked"),
            models.CheckConstraint(
                condition=Q(released_at__isnull=True) | ~Q(release_reason=""), name="stafflockout_release_has_reason",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.username} locked at {self.locked_at:%Y-%m-%d %H:%M}"

    @property
    def is_open(self) -> bool:
        return self.released_at is None
