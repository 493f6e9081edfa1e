from django.urls import path

from reconciliation.api import views

urlpatterns = [
    path("reconciliation/runs", views.RunListApi.as_view(), name="reconciliation-runs"),
    path("reconciliation/runs/<str:run_id>", views.RunDetailApi.as_view(), name="reconciliation-run-detail"),
    path("reconciliation/items", views.ItemListApi.as_view(), name="reconciliation-items"),
    path("reconciliation/items/<str:item_id>", views.ItemDetailApi.as_view(), name="reconciliation-item-detail"),
    path("reconciliation/items/<str:item_id>/investigate", views.ItemInvestigateApi.as_view(),
         name="reconciliation-item-investigate"),
    path("reconciliation/items/<str:item_id>/resolve", views.ItemResolveApi.as_view(), name="reconciliation-item-resolve"),
    path("reconciliation/items/<str:item_id>/approve", views.ItemApproveApi.as_view(), name="reconciliation-item-approve"),
    path("reconciliation/items/<str:item_id>/reject", views.ItemRejectApi.as_view(), name="reconciliation-item-reject"),
]
