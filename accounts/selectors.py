"""Read queries about merchants."""

from accounts.models import Merchant


def merchant_visible_to(*, caller: Merchant | None, merchant_public_id: str | None = None) -> Merchant | None:
    """Whose rows a caller may list: an API key's own merchant (any ?merchant= is ignored);
    for staff (caller None), every merchant (None) unless narrowed with ?merchant=mer_…
    (an unknown one matches nothing)."""
    if caller is not None:
        return caller
    if merchant_public_id:
        return Merchant.objects.filter(public_id=merchant_public_id).first() or Merchant(pk=-1)
    return None
