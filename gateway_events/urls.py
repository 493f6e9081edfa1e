from django.urls import path

from gateway_events.views import gateway_webhook

# Mounted at /webhooks/ by flowpay/urls.py. Only gateways that send webhooks have a URL.
urlpatterns = [
    path("stripe", gateway_webhook, {"gateway": "stripe"}, name="webhooks-stripe"),
    path("paypal", gateway_webhook, {"gateway": "paypal"}, name="webhooks-paypal"),
]
