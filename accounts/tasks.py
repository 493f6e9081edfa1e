"""Celery tasks of accounts (beat): each calls one service."""

from celery import shared_task


@shared_task(name="accounts.release_expired_lockouts")
def release_expired_lockouts_task() -> int:
    from accounts.services.lockout import staff_lockouts_release_expired

    return staff_lockouts_release_expired()
