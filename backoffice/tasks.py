"""Back-office tasks: the nightly verify_ledger (beat, flowpay/settings/celery.py). It reads
every app, so it lives here; the service is imported in the body, like every task's."""

import logging

from celery import shared_task

from core.actors import Actor

logger = logging.getLogger(__name__)


@shared_task(name="backoffice.verify_ledger", ignore_result=True, time_limit=3600, soft_time_limit=3500)
def verify_ledger_task() -> bool:
    from backoffice.ledger.verify import ledger_verify

    verification = ledger_verify(actor=Actor.worker("backoffice.verify_ledger"))
    if not verification.ok:
        logger.error("verify_ledger found problems", extra={"problems": len(verification.problems),
                                                             "imbalance": verification.books.imbalance})
    return verification.ok
