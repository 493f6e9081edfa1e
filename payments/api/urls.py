from django.urls import path

from payments.api import views

urlpatterns = [
    path("transactions", views.TransactionListCreateApi.as_view(), name="transactions"),
    path("transactions/<str:transaction_id>", views.TransactionDetailApi.as_view(), name="transaction-detail"),
    path("transactions/<str:transaction_id>/capture", views.TransactionCaptureApi.as_view(), name="transaction-capture"),
    path("transactions/<str:transaction_id>/cancel", views.TransactionCancelApi.as_view(), name="transaction-cancel"),
    path("customers", views.CustomerListCreateApi.as_view(), name="customers"),
    path("customers/<str:customer_id>", views.CustomerDetailApi.as_view(), name="customer-detail"),
    path("customers/<str:customer_id>/payment-methods", views.CustomerPaymentMethodsApi.as_view(), name="customer-payment-methods"),
]
