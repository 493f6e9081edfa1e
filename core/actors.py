"""Who did something: every service takes an Actor and writes it into the audit log."""

from dataclasses import dataclass
from enum import StrEnum

from core.permissions import user_roles


class ActorType(StrEnum):
    API = "api"  # a merchant API key
    STAFF = "staff"  # a staff user (admin, dashboard or personal token)
    WORKER = "worker"  # a Celery task
    WEBHOOK = "webhook"  # an inbound gateway event
    SYSTEM = "system"  # management commands, migrations, beat


@dataclass(frozen=True)
class Actor:
    type: ActorType
    id: str  # api key prefix, staff username, task name, ...
    merchant_id: int | None = None
    user_id: int | None = None
    ip: str | None = None
    # A staff user's roles (core.permissions), loaded once when the actor is built, so the
    # services check capabilities on the actor without querying groups again. Empty for
    # every other kind of actor.
    roles: frozenset[str] = frozenset()

    @classmethod
    def system(cls, name: str = "system") -> "Actor":
        return cls(type=ActorType.SYSTEM, id=name)

    @classmethod
    def worker(cls, task_name: str) -> "Actor":
        return cls(type=ActorType.WORKER, id=task_name)

    @classmethod
    def staff(cls, *, user, ip: str | None = None) -> "Actor":
        return cls(type=ActorType.STAFF, id=user.get_username(), user_id=user.pk, ip=ip, roles=user_roles(user))

    @classmethod
    def api_key(cls, *, api_key, ip: str | None = None) -> "Actor":
        return cls(type=ActorType.API, id=api_key.prefix, merchant_id=api_key.merchant_id, ip=ip)
