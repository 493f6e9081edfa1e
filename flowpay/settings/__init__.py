"""FlowPay settings (DJANGO_SETTINGS_MODULE=flowpay.settings), read from the environment
with django-environ, one module per topic. Each setting is declared once, with its
default, in its topic module; docs/configuration.md lists them all (a test keeps the two in
step) and core/checks.py rejects what production cannot run with.

Order matters: later modules import values (env, DEBUG, RUN_DIR, REDIS_URL) from earlier ones.
"""
# ruff: noqa: I001  (the imports run in this order, not alphabetically)

from flowpay.settings.base import *  # noqa: F403
from flowpay.settings.database import *  # noqa: F403
from flowpay.settings.reconciliation import *  # noqa: F403
from flowpay.settings.dashboard import *  # noqa: F403
from flowpay.settings.celery import *  # noqa: F403
from flowpay.settings.api import *  # noqa: F403
from flowpay.settings.gateways import *  # noqa: F403
from flowpay.settings.ledger import *  # noqa: F403
from flowpay.settings.fraud import *  # noqa: F403
from flowpay.settings.refunds import *  # noqa: F403
from flowpay.settings.subscriptions import *  # noqa: F403
from flowpay.settings.webhooks import *  # noqa: F403
from flowpay.settings.audit import *  # noqa: F403
from flowpay.settings.logging import *  # noqa: F403
from flowpay.settings.security import *  # noqa: F403
from flowpay.settings.staff import *  # noqa: F403
from flowpay.settings.backoffice_pages import *  # noqa: F403  (dashboard lists and exports, issue 12)
