"""Read helpers shared by every app's selectors.

Rule: a merchant-scoped read goes through a Scope, the caller's view of the data: one
merchant's objects (or every merchant's, for staff) in one mode. Live and test are two
worlds: an API key sees and changes only objects of its own environment, so a live object
is, to a test key, indistinguishable from a missing one (and the other way round)."""

from dataclasses import dataclass
from typing import TypeVar

from django.db.models import Model, QuerySet

from core.errors import NotFound

T = TypeVar("T", bound=Model)


@dataclass(frozen=True)
class Scope:
    """What a caller may see and act on. `merchant` None: every merchant (staff);
    `livemode` None: both modes (staff), True: live only, False: test only."""

    merchant: Model | None = None
    livemode: bool | None = None

    def apply(self, query: QuerySet[T], *, merchant_field: str = "merchant", livemode_field: str = "livemode") -> QuerySet[T]:
        """`query` narrowed to this scope; the fields are paths for objects that reach their
        merchant or mode through a relation (a webhook delivery: endpoint__merchant)."""
        if self.merchant is not None:
            query = query.filter(**{merchant_field: self.merchant})
        if self.livemode is not None:
            query = query.filter(**{livemode_field: self.livemode})
        return query


# Every merchant, both modes: staff reads, internal services, management commands.
UNSCOPED = Scope()


def get_by_public_id(
    query: QuerySet[T], *, public_id: str, label: str, scope: Scope, param: str = "id",
    merchant_field: str = "merchant", livemode_field: str = "livemode",
) -> T:
    """The object with this public id in `query` narrowed to the caller's scope: another
    merchant's id, or an id of the other mode, is indistinguishable from a missing one."""
    query = scope.apply(query, merchant_field=merchant_field, livemode_field=livemode_field)
    found = query.filter(public_id=public_id).first()
    if found is None:
        raise NotFound(f"No such {label}: '{public_id[:64]}'", param=param)
    return found
