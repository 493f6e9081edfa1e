from django.urls import path

from subscriptions.api import views

urlpatterns = [
    path("plans", views.PlanListCreateApi.as_view(), name="plans"),
    path("plans/<str:plan_id>", views.PlanDetailApi.as_view(), name="plan-detail"),
    path("plans/<str:plan_id>/deactivate", views.PlanDeactivateApi.as_view(), name="plan-deactivate"),
    path("subscriptions", views.SubscriptionListCreateApi.as_view(), name="subscriptions"),
    path("subscriptions/<str:subscription_id>", views.SubscriptionDetailApi.as_view(), name="subscription-detail"),
    path("subscriptions/<str:subscription_id>/cancel", views.SubscriptionCancelApi.as_view(), name="subscription-cancel"),
    path("subscriptions/<str:subscription_id>/pause", views.SubscriptionPauseApi.as_view(), name="subscription-pause"),
    path("subscriptions/<str:subscription_id>/resume", views.SubscriptionResumeApi.as_view(), name="subscription-resume"),
    path("invoices", views.InvoiceListApi.as_view(), name="invoices"),
    path("invoices/<str:invoice_id>", views.InvoiceDetailApi.as_view(), name="invoice-detail"),
    path("subscription-settings", views.SubscriptionSettingsApi.as_view(), name="subscription-settings"),
]
