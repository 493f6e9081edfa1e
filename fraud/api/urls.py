from django.urls import path

from fraud.api import views

urlpatterns = [
    path("fraud/rules", views.RuleListCreateApi.as_view(), name="fraud-rules"),
    path("fraud/rules/test", views.RuleTestApi.as_view(), name="fraud-rule-test"),
    path("fraud/rules/<str:rule_id>", views.RuleDetailApi.as_view(), name="fraud-rule-detail"),
    path("fraud/lists", views.FraudListIndexApi.as_view(), name="fraud-lists"),
    path("fraud/lists/<str:list_name>", views.FraudListItemsApi.as_view(), name="fraud-list-items"),
    path("fraud/lists/<str:list_name>/<str:item_id>", views.FraudListItemDetailApi.as_view(), name="fraud-list-item-detail"),
    path("fraud/reviews", views.ReviewListApi.as_view(), name="fraud-reviews"),
    path("fraud/reviews/<str:review_id>", views.ReviewDetailApi.as_view(), name="fraud-review-detail"),
    path("fraud/reviews/<str:review_id>/approve", views.ReviewApproveApi.as_view(), name="fraud-review-approve"),
    path("fraud/reviews/<str:review_id>/reject", views.ReviewRejectApi.as_view(), name="fraud-review-reject"),
]
