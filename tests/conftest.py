"""Shared fixtures: merchants with API keys, staff tokens, API clients, payments.

Tests run against the real PostgreSQL and Redis named by DATABASE_URL and REDIS_URL
(`make test` sets them to 127.0.0.1).

The tests mirror the apps (tests/<app>/); fakes, helpers and the fixtures more than one
app's tests use live in tests/support/, whose fixture modules are loaded here as plugins."""

import copy
import io
import logging
import uuid
from dataclasses import dataclass

import pytest
from django.db.backends.postgresql.operations import DatabaseOperations
from rest_framework.test import APIClient

from accounts.models import Merchant
from accounts.services import (
    api_key_create,
    merchant_create,
    staff_token_create,
)
from core.actors import Actor
from payments.services.transactions import PaymentInput, transaction_create

pytest_plugins = [
    "tests.support.browser",
    "tests.support.commands",
    "tests.support.fraud",
    "tests.support.gateways",
    "tests.support.inbound_webhooks",
    "tests.support.ledger",
    "tests.support.localstripe",
    "tests.support.reconciliation",
    "tests.support.refunds",
    "tests.support.staff_auth",
]


@pytest.fixture(scope="session", autouse=True)
def _flush_bypasses_audit_trigger():
    """Transactional tests end with Django flushing every table (TRUNCATE). The append-only
    tables' triggers rightly reject that (the audit log and seals; the ledger's transactions,
    entries and accounts), so the test-only flush runs with session_replication_role=replica,
    which skips triggers for that one transaction. Production code never does this."""
    original = DatabaseOperations.execute_sql_flush

    def execute_sql_flush(self, sql_list):
        return original(self, ["SET LOCAL session_replication_role = replica", *sql_list])

    DatabaseOperations.execute_sql_flush = execute_sql_flush
    yield
    DatabaseOperations.execute_sql_flush = original


@pytest.fixture(autouse=True)
def _isolated_shared_state(settings):
    """Each test gets its own cache namespace (breakers, gateway stats, simulator faults,
    rate limits live in Redis, shared by parallel workers), a fresh view of the runtime
    switches, and freshly built gateways."""
    from core.runtime import runtime_invalidate_local_cache
    from gateways.registry import gateway_named

    caches = copy.deepcopy(settings.CACHES)
    caches["default"]["KEY_PREFIX"] = f"flowpay-test-{uuid.uuid4().hex[:12]}"
    settings.CACHES = caches
    runtime_invalidate_local_cache()
    gateway_named.cache_clear()
    yield
    runtime_invalidate_local_cache()
    gateway_named.cache_clear()


@dataclass
class MerchantAccount:
    merchant: Merchant
    api_key: str
    client: APIClient


def _client(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


@pytest.fixture
def make_merchant(db):
    def make(name: str = "Acme") -> MerchantAccount:
        merchant = merchant_create(name=name, actor=Actor.system("test"))
        issued = api_key_create(merchant=merchant, actor=Actor.system("test"))
        return MerchantAccount(merchant=merchant, api_key=issued.secret, client=_client(issued.secret))

    return make


@pytest.fixture
def merchant_a(make_merchant) -> MerchantAccount:
    return make_merchant("Merchant A")


@pytest.fixture
def merchant_b(make_merchant) -> MerchantAccount:
    return make_merchant("Merchant B")


@pytest.fixture
def staff_client(db):
    def make(role: str, username: str | None = None) -> APIClient:
        issued = staff_token_create(username=username or f"{role}-user", role=role, actor=Actor.system("test"))
        return _client(issued.secret)

    return make


@pytest.fixture
def make_payment():
    def make(account: MerchantAccount, *, amount: int = 1999, currency: str = "USD",
             payment_method: str = "pm_card_visa", capture_method: str = "automatic"):
        return transaction_create(
            merchant=account.merchant,
            payment=PaymentInput(amount=amount, currency=currency, payment_method=payment_method, capture_method=capture_method),
            actor=Actor.system("test"),
        )

    return make


@pytest.fixture
def json_log_lines():
    """What the configured JSON console handler (formatter and filters) writes, captured
    for the loggers named: call the fixture's `capture(*logger_names)` and read `.getvalue()`."""
    configured = logging.getLogger().handlers[0]
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(configured.formatter)
    for log_filter in configured.filters:
        handler.addFilter(log_filter)
    attached = []

    def capture(*names: str) -> io.StringIO:
        for name in names or ("",):
            logging.getLogger(name).addHandler(handler)
            attached.append(name)
        return buffer

    yield capture
    for name in attached:
        logging.getLogger(name).removeHandler(handler)


@pytest.fixture
def celery_eager():
    """Tasks queued with .delay() run at once in this process (for beat tasks that fan out)."""
    from flowpay.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous
