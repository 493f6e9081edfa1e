import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flowpay.settings")
django_application = get_wsgi_application()

from core.middleware import UnreadableCharsetWSGIMiddleware  # noqa: E402  (once Django is set up)

application = UnreadableCharsetWSGIMiddleware(django_application)
