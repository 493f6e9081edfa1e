"""Opening a review: the payment service calls review_open once a payment screening held
for review has been authorized (not captured). Deciding it (approve, reject) moves money
through the payment and refund services, so it lives above them, in fraud.reviews."""

from __future__ import annotations

from django.db import transaction

from audit.actions import AuditAction
from audit.services import audit_record
from core.actors import Actor
from fraud.models import Decision, Review
from fraud.screening.representations import ReviewOutput
from webhooks.events import EventType
from webhooks.payloads import api_payload
from webhooks.services import outbox_publish


@transaction.atomic
def review_open(*, decision_id: int, actor: Actor) -> Review:
    """The review of a held payment (one per payment: opening it again returns it)."""
    decision = Decision.objects.get(pk=decision_id)
    review, created = Review.objects.get_or_create(
        transaction_id=decision.transaction_id,
        defaults={"decision": decision, "merchant_id": decision.merchant_id, "livemode": decision.livemode},
    )
    if created:
        audit_record(actor=actor, action=AuditAction.FRAUD_REVIEW_OPEN, target=review, merchant_id=review.merchant_id,
                     details={"decision": decision.public_id, "score": decision.score,
                              "rules": [rule["predicate"] for rule in decision.rules]})
        review_announce(review, event_type=EventType.REVIEW_OPENED)
    return review


def review_announce(review: Review, *, event_type: EventType) -> None:
    """The merchant's event for a review opened or closed, its payload the review as the API
    renders it; inside the database transaction that opened or closed it (outbox)."""
    outbox_publish(merchant_id=review.merchant_id, livemode=review.livemode, event_type=event_type,
                   payload=api_payload(ReviewOutput, review))
