"""Celery task sealing the audit log; the sealing module is imported in the body, as in
every tasks module, so that code it runs may queue tasks without an import cycle."""

from celery import shared_task


@shared_task(name="audit.seal", ignore_result=True)
def audit_seal_task() -> int:
    """Beat: seal the audit entries old enough into the hash chain."""
    from audit.sealing import audit_seal_pending

    return audit_seal_pending()
