"""Staff sign-in: the second factor (django-otp), lockout (django-axes), staff API tokens.

Code reads the FLOWPAY_STAFF_* values as settings.X at call time (the axes callables in
accounts/lockout.py included), so tests may override them."""

from flowpay.settings.base import env

# Password first, then django-axes refuses a locked username before any password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

# --- the second factor (TOTP, django-otp) ------------------------------------------------
# URL prefixes where a staff session must have passed its second factor (the admin and the
# dashboard); a signed-in session that has not is sent to enrolment or to the sign-in page.
FLOWPAY_STAFF_MFA_PATHS = env.list("FLOWPAY_STAFF_MFA_PATHS", default=["/admin/", "/dashboard/"])
# The issuer authenticator apps show beside the account name.
OTP_TOTP_ISSUER = env.str("FLOWPAY_TOTP_ISSUER", default="FlowPay")
# A staff token is issued only to a session whose second factor was checked this recently;
# past it, the issue form asks for a fresh code.
FLOWPAY_STAFF_TOKEN_MFA_MAX_AGE_SECONDS = env.int("FLOWPAY_STAFF_TOKEN_MFA_MAX_AGE_SECONDS", default=300)
# An enrolment started by a password sign-in must be finished within this long.
FLOWPAY_STAFF_ENROLMENT_SECONDS = env.int("FLOWPAY_STAFF_ENROLMENT_SECONDS", default=600)

# --- lockout (django-axes), per username ---------------------------------------------------
# Failed sign-ins (wrong password or wrong code) that lock a username, and for how long
# (PCI DSS 8.3.4: at most 10, at least 30 minutes), even for the right password and code.
FLOWPAY_STAFF_LOCKOUT_FAILURES = env.int("FLOWPAY_STAFF_LOCKOUT_FAILURES", default=10)
FLOWPAY_STAFF_LOCKOUT_MINUTES = env.int("FLOWPAY_STAFF_LOCKOUT_MINUTES", default=30)
AXES_FAILURE_LIMIT = "accounts.lockout.failure_limit"
AXES_COOLOFF_TIME = "accounts.lockout.cool_off"
AXES_LOCKOUT_PARAMETERS = ["username"]
AXES_USERNAME_FORM_FIELD = "username"
AXES_CLIENT_IP_CALLABLE = "core.network.client_ip"
# A success clears the failures; a refused attempt during a lockout does not prolong it.
AXES_RESET_ON_SUCCESS = True
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
# The sign-in page says why it refused; axes' middleware keeps that page.
AXES_LOCKOUT_CALLABLE = "accounts.lockout.lockout_response"
# Locks are shown and released (with a reason, audited) on FlowPay's own lockout page, never
# by deleting axes' rows in its admin; successful sign-ins are in the audit log already.
AXES_ENABLE_ADMIN = False
AXES_DISABLE_ACCESS_LOG = True
# Never copied into axes' records of failed attempts.
AXES_SENSITIVE_PARAMETERS = ["password", "otp_token", "csrfmiddlewaretoken", "username"]
# axes.W006 asks for the client IP in the lockout key: the lock is per username on purpose
# (PCI DSS 8.3.4 locks the account; a per-IP key would lock out every user behind one proxy).
SILENCED_SYSTEM_CHECKS = ["axes.W006"]

# --- staff API tokens (fp_staff_…) -------------------------------------------------------------
# Lifetime of a new token unless its issuer picks another, and the longest allowed (the
# database refuses more than 30 days whatever this says).
FLOWPAY_STAFF_TOKEN_DEFAULT_HOURS = env.int("FLOWPAY_STAFF_TOKEN_DEFAULT_HOURS", default=12)
FLOWPAY_STAFF_TOKEN_MAX_DAYS = env.int("FLOWPAY_STAFF_TOKEN_MAX_DAYS", default=30)
