"""10. the dashboard overview: the admin's home (`GET /admin/?period=30d&currency=USD&mode=test`)
rendered for a finance user signed in through the real sign-in form (password and TOTP
code), in process with Django's test client (the second factor makes an HTTP session through
gunicorn impractical for the harness), vs the raw aggregate SQL of the same figures over the
transactions table (gateway × status counts and sums for the period and the one before it).

Data (untimed, once): N transactions over the last 30 days (INSERT … SELECT generate_series:
four in five USD, a tenth declined with a code, three gateways), then the rollup rebuilt
(its time is a note). Goals: the overview within 3× of the SQL, and its p95 under 500 ms.
"""

from __future__ import annotations

import datetime as dt
import time

from django.db import connection

from bench import data
from bench.config import Context
from bench.stats import Goal, Ratio, RowResult, Stopwatch, ratios, summarize

URL = "/admin/?period=30d&currency=USD&mode=test"
PASSWORD = "bench-finance-password-2026"
RAW_SQL = """
SELECT created_at >= %(start)s AS current, gateway, status, count(*), sum(amount), sum(amount_captured)
FROM transactions
WHERE livemode = false AND currency = 'USD' AND created_at >= %(previous)s AND created_at < %(end)s
GROUP BY 1, 2, 3
"""


def _percentile(ordered: list[float], pct: float) -> float:
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def transactions_insert(ctx: Context, n: int) -> None:
    from payments.models import Transaction

    data.insert_select(Transaction, count=n, params={"merchant": ctx.fixtures.merchant_id}, sql={
        "public_id": data.public_id_sql("txn"), "merchant_id": "%(merchant)s",
        "created_at": "now() - (g %% 2592000) * interval '1 second'",
        "amount": "500 + g %% 20000",
        "amount_captured": "CASE WHEN g %% 10 = 3 THEN 0 ELSE 500 + g %% 20000 END",
        "currency": "CASE WHEN g %% 5 = 4 THEN 'EUR' ELSE 'USD' END",
        "status": "CASE WHEN g %% 10 = 3 THEN 'failed' ELSE 'completed' END",
        "failure_code": "CASE WHEN g %% 10 = 3 THEN (ARRAY['insufficient_funds', 'expired_card', 'card_declined'])[1 + g %% 3] "
                        "ELSE '' END",
        "payment_method": "'pm_card_visa'", "payment_method_token": "'pm_card_visa'",
        "gateway": "(ARRAY['stripe', 'paypal', 'simulator'])[1 + g %% 3]", "gateway_reference": "'ref_bench' || g",
    })
    data.vacuum_analyze([Transaction._meta.db_table])


def _finance_client():
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.test import Client
    from django_otp.oath import totp
    from django_otp.plugins.otp_totp.models import TOTPDevice

    user, _ = get_user_model().objects.get_or_create(username="bench-finance", defaults={"is_staff": True})
    user.set_password(PASSWORD)
    user.save()
    user.groups.add(Group.objects.get_or_create(name="finance")[0])
    device, _ = TOTPDevice.objects.get_or_create(user=user, name="bench", defaults={"confirmed": True})
    code = f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=device.drift):06d}"
    client = Client()
    response = client.post("/admin/login/", {"username": user.username, "password": PASSWORD, "otp_token": code})
    if response.status_code != 302:
        raise RuntimeError(f"the bench's finance user could not sign in: {response.status_code}")
    return client


def _overview(client) -> float:
    started = time.perf_counter()
    response = client.get(URL)
    elapsed = time.perf_counter() - started
    if response.status_code != 200 or b'id="overview-cards"' not in response.content:
        raise RuntimeError(f"the overview answered {response.status_code}: {response.content[:300]!r}")
    return elapsed * 1000


def _raw_sql(params: dict) -> float:
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(RAW_SQL, params)
        cursor.fetchall()
    return (time.perf_counter() - started) * 1000


def row_dashboard_overview(ctx: Context) -> RowResult:
    from django.test import override_settings
    from django.utils import timezone

    from backoffice.dashboard.models import HourlyRollup, RollupWatermark
    from backoffice.dashboard.rollup import dashboard_rollup_rebuild

    data.activity_wipe(vacuum=False)
    HourlyRollup.objects.all().delete()
    RollupWatermark.objects.all().delete()
    n = ctx.sizes.dashboard_transactions
    transactions_insert(ctx, n)
    now = timezone.now()
    with Stopwatch() as rebuild:
        dashboard_rollup_rebuild(start=now - dt.timedelta(days=61), end=now + dt.timedelta(hours=1))
    today = dt.datetime.combine(now.date(), dt.time.min, tzinfo=dt.UTC)
    period = {"start": today - dt.timedelta(days=29), "end": today + dt.timedelta(days=1)}
    params = {**period, "previous": period["start"] - dt.timedelta(days=30)}
    requests = ctx.sizes.dashboard_requests
    samples: dict[str, list[dict[str, float]]] = {"overview": [], "raw_sql": []}
    # The page's static tags by their plain names: the harness runs no collectstatic.
    with override_settings(STORAGES={"default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
                                     "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}):
        client = _finance_client()
        for _ in range(3):  # warm: imports, templates, connections
            _overview(client)
            _raw_sql(params)
        with Stopwatch() as watch:
            for number in range(1, ctx.sizes.rounds + 1):
                times = {"overview": [], "raw_sql": []}
                for index in range(requests):
                    order = ("overview", "raw_sql") if (index + number) % 2 == 0 else ("raw_sql", "overview")
                    for arm in order:
                        times[arm].append(_overview(client) if arm == "overview" else _raw_sql(params))
                for arm, values in times.items():
                    ordered = sorted(values)
                    metrics = {"p50_ms": _percentile(ordered, 50), "p95_ms": _percentile(ordered, 95), "zero_ms": 0.0}
                    samples[arm].append(metrics)
                    ctx.log(f"    round {number}/{ctx.sizes.rounds} {arm}: p50={metrics['p50_ms']:.3g} ms, p95={metrics['p95_ms']:.3g} ms")
    specs = [
        Ratio("overview p50 / raw aggregate SQL p50", ("overview", "p50_ms"), ("raw_sql", "p50_ms"), Goal(at_most=3)),
        Ratio("overview p95 / raw aggregate SQL p95", ("overview", "p95_ms"), ("raw_sql", "p95_ms")),
        Ratio("overview p95 (ms)", ("overview", "p95_ms"), ("overview", "zero_ms"), Goal(at_most=500), difference=True),
    ]
    return RowResult(
        id="10", title="dashboard overview",
        candidate=f"GET {URL} in process (test client), a finance user signed in with password and TOTP; the figures, "
                  "charts and open counts from the hourly rollup",
        baseline="the raw aggregate SQL of the same figures over the transactions table (this period and the previous one), "
                 "interleaved per request",
        rounds=ctx.sizes.rounds, arms=summarize(samples), ratios=ratios(samples, specs), seconds=watch.seconds,
        sizes={"transactions": n, "requests_per_round": requests},
        checks={"rollup_buckets": HourlyRollup.objects.count()},
        notes=[f"rollup rebuilt over 61 days of {n} transactions in {rebuild.seconds:.1f} s (untimed)"],
    )
