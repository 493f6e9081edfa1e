"""Abstract building blocks shared by the apps' models (no concrete tables here)."""

import secrets
import string

from django.db import models

_ALPHABET = string.ascii_letters + string.digits


def new_public_id(prefix: str, length: int = 24) -> str:
    """A prefixed, unguessable public id (`txn_…`, `cus_…`); database ids stay internal."""
    return f"{prefix}_" + "".join(secrets.choice(_ALPHABET) for _ in range(length))


class TimeStampedModel(models.Model):
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class RuntimeSetting(models.Model):
    """Operator switches that every web and worker process must follow (primary gateway,
    fallback and simplified-flow modes, reload counters). Written only by
    flowpay.runtime.runtime_set, which audits the change; processes re-read within seconds."""

    key = models.CharField(max_length=64, primary_key=True)
    value = models.JSONField()
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.CharField(max_length=150, blank=True)

    def __str__(self) -> str:
        return f"{self.key}={self.value!r}"
