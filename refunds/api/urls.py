from django.urls import path

from refunds.api import views

urlpatterns = [
    path("transactions/<str:transaction_id>/refund", views.TransactionRefundApi.as_view(), name="transaction-refund"),
    path("transactions/<str:transaction_id>/refunds", views.TransactionRefundsListApi.as_view(), name="transaction-refunds"),
    path("transactions/<str:transaction_id>/chargeback", views.TransactionChargebackApi.as_view(), name="transaction-chargeback"),
    path("transactions/<str:transaction_id>/chargebacks", views.TransactionChargebacksListApi.as_view(),
         name="transaction-chargebacks"),
    path("refunds", views.RefundListApi.as_view(), name="refunds"),
    path("refunds/<str:refund_id>", views.RefundDetailApi.as_view(), name="refund-detail"),
    path("refunds/<str:refund_id>/approve", views.RefundApproveApi.as_view(), name="refund-approve"),
    path("refunds/<str:refund_id>/reject", views.RefundRejectApi.as_view(), name="refund-reject"),
    path("refunds/<str:refund_id>/retry", views.RefundRetryApi.as_view(), name="refund-retry"),
    path("chargebacks", views.ChargebackListApi.as_view(), name="chargebacks"),
    path("chargebacks/<str:chargeback_id>", views.ChargebackDetailApi.as_view(), name="chargeback-detail"),
    path("chargebacks/<str:chargeback_id>/evidence", views.ChargebackEvidenceApi.as_view(), name="chargeback-evidence"),
    path("chargebacks/<str:chargeback_id>/accept", views.ChargebackAcceptApi.as_view(), name="chargeback-accept"),
    path("chargebacks/<str:chargeback_id>/outcome", views.ChargebackOutcomeApi.as_view(), name="chargeback-outcome"),
]
