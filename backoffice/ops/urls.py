from django.urls import path

from backoffice.ops import views

urlpatterns = [
    path("payment/switch-gateway", views.SwitchGatewayApi.as_view(), name="ops-switch-gateway"),
    path("system/enable-fallback-gateway", views.EnableFallbackApi.as_view(), name="ops-enable-fallback"),
    path("system/disable-fallback-gateway", views.DisableFallbackApi.as_view(), name="ops-disable-fallback"),
    path("system/reload-api-keys", views.ReloadApiKeysApi.as_view(), name="ops-reload-api-keys"),
    path("system/refresh-db-connections", views.RefreshDbConnectionsApi.as_view(), name="ops-refresh-db-connections"),
    path("system/enable-simplified-flow", views.EnableSimplifiedFlowApi.as_view(), name="ops-enable-simplified-flow"),
    path("system/disable-simplified-flow", views.DisableSimplifiedFlowApi.as_view(), name="ops-disable-simplified-flow"),
]
