"""CSV exports of the dashboard's lists: streamed up to a limit, written by a Celery worker
to a file above it (ExportJob), downloaded by the staff user who asked for it."""
