"""Cross-app admin pages (the back office imports every domain app; none imports it)."""

from backoffice.admin import transactions  # noqa: F401  (registers the pages)
