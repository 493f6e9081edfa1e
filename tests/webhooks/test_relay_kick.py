"""The relay is kicked on commit, with at most one kick waiting in the queue: a commit made
while one waits is relayed by it, and the kicked relay clears the wait before it reads, so
the commits after that kick again. Nothing is left unrelayed."""

import pytest
from django.db import transaction

from webhooks.events import EventType
from webhooks.models import OutboxEvent
from webhooks.services import outbox
from webhooks.services.outbox import outbox_publish, outbox_relay_kicked

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def kicks(monkeypatch):
    """The relay kicks queued (not sent to a broker: no relay runs until the test runs it)."""
    queued: list[None] = []
    monkeypatch.setattr(outbox.outbox_relay_task, "delay", lambda: queued.append(None))
    return queued


def publish(merchant) -> OutboxEvent:
    with transaction.atomic():
        return outbox_publish(merchant_id=merchant.pk, event_type=EventType.TRANSACTION_COMPLETED, payload={"livemode": False})


def test_commits_while_a_kick_waits_add_none_and_are_relayed_by_it(merchant_a, kicks):
    first = publish(merchant_a.merchant)
    second = publish(merchant_a.merchant)
    assert len(kicks) == 1  # the second commit found a kick waiting

    # the waiting kick's relay reads both commits' events
    assert outbox_relay_kicked() == 2
    assert OutboxEvent.objects.filter(pk__in=[first.pk, second.pk], relayed_at__isnull=False).count() == 2

    # and once it started, the next commit kicks again
    third = publish(merchant_a.merchant)
    assert len(kicks) == 2
    assert outbox_relay_kicked() == 1
    assert OutboxEvent.objects.get(pk=third.pk).relayed_at is not None


def test_a_kick_that_could_not_be_queued_does_not_hold_back_the_next(merchant_a, monkeypatch, kicks):
    def broker_down():
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(outbox.outbox_relay_task, "delay", broker_down)
    publish(merchant_a.merchant)  # the change commits; its kick is lost (the beat sweep relays it)
    monkeypatch.setattr(outbox.outbox_relay_task, "delay", lambda: kicks.append(None))
    publish(merchant_a.merchant)
    assert len(kicks) == 1
    assert outbox_relay_kicked() == 2
