import logging

from celery import shared_task

from payments.services.idempotency import idempotency_records_purge

logger = logging.getLogger(__name__)


@shared_task(name="payments.purge_idempotency_keys", ignore_result=True)
def purge_idempotency_keys_task() -> int:
    deleted = idempotency_records_purge()
    logger.info("purged idempotency keys", extra={"deleted": deleted})
    return deleted
