"""Hosts, HTTPS, cookies, CSRF, sessions and staff passwords."""

from flowpay.settings.base import DEBUG, env

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
# TLS usually ends at the load balancer, which tells us the original scheme.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# The proxies (CIDRs) whose X-Forwarded-For names the client: the client IP recorded in the
# audit log is the right-most address not in this list (core/network.py). Nobody is trusted
# in production until this is set to the load balancers' addresses; DEBUG trusts loopback.
FLOWPAY_TRUSTED_PROXIES = env.list("FLOWPAY_TRUSTED_PROXIES", default=[]) or (["127.0.0.0/8", "::1"] if DEBUG else [])
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
# Probes and Prometheus reach the pods over plain HTTP inside the cluster.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
# Production (DEBUG off) sends the session and CSRF cookies over HTTPS only; browsers also
# keep Secure cookies for http://localhost, so a local production-like run still signs in.
SESSION_COOKIE_SECURE = SECURE_SSL_REDIRECT or not DEBUG
CSRF_COOKIE_SECURE = SECURE_SSL_REDIRECT or not DEBUG
# No script reads either cookie: the admin's forms carry the CSRF token in a hidden field.
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
# Staff sessions end after this many idle seconds (PCI DSS 8.2.8: 15 minutes): every request
# of a signed-in session pushes its expiry forward, none after it has passed.
FLOWPAY_STAFF_SESSION_IDLE_SECONDS = env.int("FLOWPAY_STAFF_SESSION_IDLE_SECONDS", default=900)
SESSION_COOKIE_AGE = FLOWPAY_STAFF_SESSION_IDLE_SECONDS
SESSION_SAVE_EVERY_REQUEST = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# Staff passwords (PCI DSS 8.3.6, 8.3.7): at least 12 characters with letters and digits, not
# one of the last four, hashed with Argon2 (PBKDF2 hashes of older passwords still verify and
# are upgraded to Argon2 at the next sign-in).
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "accounts.passwords.LettersAndDigitsValidator"},
    {"NAME": "accounts.passwords.PasswordHistoryValidator", "OPTIONS": {"remembered": 4}},
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
LOGIN_URL = "/admin/login/"
