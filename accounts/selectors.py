"""Read queries about merchants."""

from accounts.models import Merchant
from core.selectors import Scope


def merchant_visible_to(*, scope: Scope, merchant_public_id: str | None = None, livemode: bool | None = None) -> Scope:
    """Whose rows, in which mode, a caller may list. An API key's scope is its own merchant in
    its own mode: ?merchant= and ?livemode= are ignored. Staff (every merchant, both modes)
    may narrow with ?merchant=mer_… (an unknown one matches nothing) and ?livemode=."""
    if scope.merchant is not None or scope.livemode is not None:
        return scope
    merchant = None
    if merchant_public_id:
        merchant = Merchant.objects.filter(public_id=merchant_public_id).first() or Merchant(pk=-1)
    return Scope(merchant=merchant, livemode=livemode)
