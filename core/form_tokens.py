"""One-time tokens of the admin forms that move money (a refund, its approval or rejection,
a chargeback's outcome, ...): a second submit of the same rendered form (a double click, the
back button, a browser re-sending the POST) does nothing and says so.

Rules:
- Rendering a form issues a random token, stored server-side as an IdempotencyRecord
  scoped to the staff user and bound to the form's path, in flight until used.
- A submit runs only if one conditional UPDATE turns that record from in flight to
  completed: of two concurrent submits of the same form exactly one wins. A token that is
  unknown, another user's, another form's, already used or purged (forms older than the
  idempotency TTL, 24 hours) is refused.
- A submit that carries no token at all is not refused: the token guards against a rendered
  form being sent twice, it is not an access control (the staff session, CSRF and the
  capabilities are), and every form FlowPay renders carries one.
- A form shown again after a refusal by the service (wrong amount, wrong state) gets a new
  token: the refused submit moved nothing.
"""

import secrets

from django.utils import timezone

from core.models import IdempotencyRecord

FORM_TOKEN_FIELD = "form_token"


def _scope(request) -> str:
    return f"admin-form:{request.user.pk}"


def form_token_issue(request) -> str:
    """A new token for the form rendered at request.path, for the logged-in staff user."""
    token = secrets.token_urlsafe(24)
    IdempotencyRecord.objects.create(
        scope=_scope(request), key=token, fingerprint="", method="POST", path=request.path[:500], locked_at=timezone.now(),
    )
    return token


def form_token_claim(request) -> bool:
    """Whether this POST may run: True once per issued token (and for a POST without one);
    False when its token was used already or was never issued for this user and form."""
    token = request.POST.get(FORM_TOKEN_FIELD)
    if token is None:
        return True
    claimed = IdempotencyRecord.objects.filter(
        scope=_scope(request), key=token[:255], path=request.path[:500], status=IdempotencyRecord.Status.IN_FLIGHT,
    ).update(status=IdempotencyRecord.Status.COMPLETED, response_status=200, completed_at=timezone.now())
    return claimed == 1


ALREADY_SUBMITTED = "This form was already submitted (or has expired): nothing was done again. Check the result below."
