"""The database (DATABASE_URL), Redis and the cache."""

from flowpay.settings.base import RUN_DIR, env

# Default: SQLite in WAL mode so that the web server, the worker and beat can share it.
# With DEBUG off the check in core/checks.py requires DATABASE_URL (PostgreSQL).
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{RUN_DIR / 'flowpay.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=10000;",
            # Take the write lock when a transaction starts: no lock upgrades, no deadlocks.
            "transaction_mode": "IMMEDIATE",
        }
    )
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# PostgreSQL: FlowPay's tables live in their own schema (the runbook's `payments.transactions`).
# Every connection puts it first on its search_path, so unqualified names (every query, and
# every CREATE TABLE of every app's migrations, present or future) resolve to it; `migrate`
# creates the schema before the first migration and core's migration 0004 moves what an
# older release created in `public` (core/schema.py).
FLOWPAY_DB_SCHEMA = env.str("FLOWPAY_DB_SCHEMA", default="payments")
if DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = f"-c search_path={FLOWPAY_DB_SCHEMA},public"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# An optional read replica (a PostgreSQL hot standby) for the read-only selectors of reports,
# dashboards and reconciliation (core/db_routing.py). Its sessions are read-only as well, so a
# replica URL pointing at the primary by mistake can still never write; test runs mirror it
# to the default database.
DATABASE_REPLICA_URL = env.str("DATABASE_REPLICA_URL", default="")
if DATABASE_REPLICA_URL:
    DATABASES["replica"] = env.db_url_config(DATABASE_REPLICA_URL)
    DATABASES["replica"].update(
        CONN_MAX_AGE=DATABASES["default"].get("CONN_MAX_AGE", 0), CONN_HEALTH_CHECKS=True, TEST={"MIRROR": "default"},
    )
    DATABASES["replica"].setdefault("OPTIONS", {})["options"] = (
        f"-c search_path={FLOWPAY_DB_SCHEMA},public -c default_transaction_read_only=on"
    )
DATABASE_ROUTERS = ["core.db_routing.ReplicaRouter"]

# When set, the Celery broker and the cache default to it.
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            # Django's Redis cache, with one client per process and pipelines (core.cache).
            "BACKEND": "core.cache.RedisCache",
            "LOCATION": env.str("CACHE_URL", default=REDIS_URL),
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="flowpay"),
        }
    }
else:
    # Shared by the web server, worker and beat of `make run` without a Redis server.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(RUN_DIR / "cache"),
        }
    }
