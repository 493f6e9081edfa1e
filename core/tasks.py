"""Celery tasks of the shared kernel. Each imports what it runs in its body, so that the
modules that queue tasks can import this one at module level."""

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(name="payments.purge_idempotency_keys", ignore_result=True)
def purge_idempotency_keys_task() -> int:
    from core.idempotency import idempotency_records_purge

    deleted = idempotency_records_purge()
    logger.info("purged idempotency keys", extra={"deleted": deleted})
    return deleted
