"""FlowPay's URLs plus the bench-only bare endpoints under /bench/ (see bench/bare.py)."""

from django.urls import include, path

from bench import bare
from flowpay.urls import handler400, handler403, handler404, handler500  # noqa: F401  (same error pages)

urlpatterns = [
    path("bench/bare", bare.BareCreateApi.as_view(), name="bench-bare-create"),
    path("bench/bare/<int:row_id>", bare.BareUpdateApi.as_view(), name="bench-bare-update"),
    path("", include("flowpay.urls")),
]
