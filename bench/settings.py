"""Settings of the benchmark's servers and workers (DJANGO_SETTINGS_MODULE=bench.settings):
FlowPay's own settings, unchanged, plus a URL configuration that also mounts the bare
baseline endpoints. Everything else (middleware, DRF defaults, throttling, logging, the
database and cache) is what production runs with, so that a row's ratio is the cost of
FlowPay's own work and nothing else."""

from flowpay.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
