from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from backoffice import health
from backoffice.metrics import metrics_view

handler400 = "core.api.errors.json_bad_request"
handler403 = "core.api.errors.json_permission_denied"
handler404 = "core.api.errors.json_not_found"
handler500 = "core.api.errors.json_server_error"

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
    path("payment/health", health.payment_health, name="payment-health"),
    path("payment/schema", SpectacularAPIView.as_view(), name="schema"),
    path("payment/docs", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("payment/", include("payments.api.urls")),
    path("payment/", include("refunds.api.urls")),
    path("payment/", include("fraud.api.urls")),
    path("payment/", include("subscriptions.api.urls")),
    path("payment/", include("webhooks.api.urls")),
    path("payment/", include("ledger.api.urls")),
    path("payment/", include("reconciliation.api.urls")),
    path("internal/api/", include("backoffice.ops.urls")),
    path("webhooks/", include("gateway_events.urls")),
    path("admin/", admin.site.urls),
]
