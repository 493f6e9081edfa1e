"""Read helpers shared by every app's selectors."""

from typing import TypeVar

from django.db.models import Model, QuerySet

from core.errors import NotFound

T = TypeVar("T", bound=Model)


def get_by_public_id(query: QuerySet[T], *, public_id: str, label: str, param: str = "id") -> T:
    """The object with this public id in `query`, which the caller has already scoped to what
    the requester may see: another merchant's id is indistinguishable from a missing one."""
    found = query.filter(public_id=public_id).first()
    if found is None:
        raise NotFound(f"No such {label}: '{public_id[:64]}'", param=param)
    return found
