"""Reads that may go to a read replica (DATABASE_REPLICA_URL), and the router that sends them.

Rules that must hold:
- Only reads marked for the replica go there: a selector decorated `@reads_from_replica`
  (reports, dashboards, reconciliation listings), or code inside `with replica_reads():`.
  Everything else reads the primary.
- Writes always go to the primary; so do migrations (a replica is a copy, never migrated).
- A read inside a transaction on the primary (`transaction.atomic`: every money change, with
  its row locks) reads the primary even when marked: a replica lags, and a decision about
  money is made on what the transaction itself sees.
- Without DATABASE_REPLICA_URL there is no replica alias and everything reads the primary.
"""

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import ParamSpec, TypeVar

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

REPLICA = "replica"
_replica_reads: ContextVar[bool] = ContextVar("replica_reads", default=False)

P = ParamSpec("P")
R = TypeVar("R")


@contextmanager
def replica_reads() -> Iterator[None]:
    """Queries run in this block may read the replica (the module's rules)."""
    token = _replica_reads.set(True)
    try:
        yield
    finally:
        _replica_reads.reset(token)


def reads_from_replica(selector: Callable[P, R]) -> Callable[P, R]:
    """Marks a read-only selector whose queries may read the replica. It must return
    evaluated results (lists, numbers), not a lazy QuerySet: a QuerySet evaluated later,
    outside the selector, would read the primary."""

    @functools.wraps(selector)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with replica_reads():
            return selector(*args, **kwargs)

    return wrapper


def replica_configured() -> bool:
    return REPLICA in settings.DATABASES


class ReplicaRouter:
    """DATABASE_ROUTERS entry: the module's rules."""

    def db_for_read(self, model, **hints):
        if _replica_reads.get() and replica_configured() and not connections[DEFAULT_DB_ALIAS].in_atomic_block:
            return REPLICA
        return DEFAULT_DB_ALIAS

    def db_for_write(self, model, **hints):
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints):
        return True  # the replica holds the same rows

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == DEFAULT_DB_ALIAS
