"""Settings of row 7's baseline server: bench.settings, with a URL configuration that, when
a gunicorn worker loads it, turns the capture's ledger posting into a no-op (bench/
urls_without_ledger.py). Only this bench server runs without postings; FlowPay has no such
switch."""

from bench.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls_without_ledger"
