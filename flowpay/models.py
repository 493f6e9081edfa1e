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
