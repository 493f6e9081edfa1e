from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from flowpay import health
from flowpay.observability.views import metrics_view

handler400 = "flowpay.api.errors.json_bad_request"
handler403 = "flowpay.api.errors.json_permission_denied"
handler404 = "flowpay.api.errors.json_not_found"
handler500 = "flowpay.api.errors.json_server_error"

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
    path("payment/health", health.payment_health, name="payment-health"),
    path("payment/schema", SpectacularAPIView.as_view(), name="schema"),
    path("payment/docs", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("payment/", include("payments.api.urls")),
    path("payment/", include("refunds.api.urls")),
    path("payment/", include("subscriptions.api.urls")),
    path("payment/", include("webhooks.api.urls")),
    path("internal/api/", include("flowpay.ops.urls")),
    path("webhooks/", include("payments.inbound.urls")),
    path("admin/", admin.site.urls),
]
