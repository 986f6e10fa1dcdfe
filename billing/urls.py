from django.urls import path

from billing import views, webhook_views

urlpatterns = [
    path("auth/token/", views.LoginView.as_view(), name="token"),
    path("auth/token/refresh/", views.RefreshView.as_view(), name="token-refresh"),
    path("plans/", views.PlanListCreateView.as_view(), name="plans"),
    path("subscriptions/", views.SubscriptionListCreateView.as_view(), name="subscriptions"),
    path(
        "subscriptions/<int:pk>/cancel/",
        views.SubscriptionCancelView.as_view(),
        name="subscription-cancel",
    ),
    path("payments/", views.PaymentListCreateView.as_view(), name="payments"),
    path("payments/<int:pk>/", views.PaymentDetailView.as_view(), name="payment-detail"),
    path("payments/<int:pk>/refund/", views.PaymentRefundView.as_view(), name="payment-refund"),
    path("reports/<str:report_type>/", views.ReportView.as_view(), name="report"),
    path("admin/stats/", views.AdminStatsView.as_view(), name="admin-stats"),
    path(
        "webhooks/endpoints/",
        webhook_views.WebhookEndpointListCreateView.as_view(),
        name="webhook-endpoints",
    ),
    path(
        "webhooks/endpoints/<int:pk>/",
        webhook_views.WebhookEndpointDetailView.as_view(),
        name="webhook-endpoint-detail",
    ),
    path(
        "webhooks/endpoints/<int:pk>/deliveries/",
        webhook_views.WebhookDeliveryListView.as_view(),
        name="webhook-endpoint-deliveries",
    ),
]
