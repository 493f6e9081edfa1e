from webhooks.services.outbox import outbox_publish

__all__ = ["outbox_publish"]
