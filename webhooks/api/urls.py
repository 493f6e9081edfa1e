from django.urls import path

from webhooks.api import views

urlpatterns = [
    path("webhook-endpoints", views.WebhookEndpointListCreateApi.as_view(), name="webhook-endpoints"),
    path("webhook-endpoints/<str:endpoint_id>", views.WebhookEndpointDetailApi.as_view(), name="webhook-endpoint-detail"),
    path("webhook-deliveries", views.WebhookDeliveryListApi.as_view(), name="webhook-deliveries"),
    path("webhook-deliveries/<str:delivery_id>/resend", views.WebhookDeliveryResendApi.as_view(), name="webhook-delivery-resend"),
    path("events", views.EventListApi.as_view(), name="events"),
    path("events/<str:event_id>", views.EventDetailApi.as_view(), name="event-detail"),
]
