"""Cross-app admin pages (the back office imports every domain app; none imports it)."""

from backoffice.admin import transactions  # noqa: F401  (registers the pages)
from backoffice.dashboard import audit_log, lists  # noqa: F401  (the dashboard's lists and audit log browser)
