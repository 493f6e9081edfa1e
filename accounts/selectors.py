"""Read queries about merchants."""

from accounts.models import Merchant, PasswordHistoryEntry
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


def password_hashes_recent(*, user, count: int) -> list[str]:
    """The hashes of a user's `count` most recent passwords, the current one first (it may
    not be in the history yet: set by a command or before the history existed)."""
    hashes = [user.password] if user.password and user.has_usable_password() else []
    for encoded in PasswordHistoryEntry.objects.filter(user_id=user.pk).values_list("password", flat=True)[:count]:
        if encoded not in hashes:
            hashes.append(encoded)
    return hashes[:count]
