"""Output building blocks shared by every app's representations (the JSON the API renders
and outbox events carry). No API module is imported: services render payloads too."""

import datetime as dt


def utc_iso(value: dt.datetime | None) -> str | None:
    """A timestamp as ISO 8601 in UTC with a Z ("2025-01-31T12:00:00.123456Z"), or None."""
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if value else None
