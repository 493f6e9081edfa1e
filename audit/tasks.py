"""Celery task sealing the audit log; the sealing module is imported in the body, as in
every tasks module, so that code it runs may queue tasks without an import cycle."""

from celery import shared_task


@shared_task(name="audit.seal", ignore_result=True)
def audit_seal_task() -> int:
    """Beat: seal the audit entries whose ids are final into the hash chain, and anchor it."""
    from audit.sealing import audit_seal_pending

    return audit_seal_pending()
