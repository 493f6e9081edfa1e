from django.urls import path

from ledger.api import views

urlpatterns = [
    path("balance", views.BalanceApi.as_view(), name="balance"),
    path("balance-transactions", views.BalanceTransactionListApi.as_view(), name="balance-transactions"),
    path("balance-transactions/<str:balance_transaction_id>", views.BalanceTransactionDetailApi.as_view(),
         name="balance-transaction-detail"),
    path("payouts", views.PayoutListCreateApi.as_view(), name="payouts"),
    path("payouts/<str:payout_id>", views.PayoutDetailApi.as_view(), name="payout-detail"),
]
