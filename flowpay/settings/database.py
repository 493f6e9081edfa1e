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
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

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
