from django.urls import path
from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("notifications", views.NotificationViewSet, basename="notification")
router.register("webhooks", views.WebhookSubscriptionViewSet, basename="webhook")
router.register("calendar-feed", views.CalendarFeedViewSet, basename="calendar-feed")

urlpatterns = [
    *router.urls,
    path(
        "notification-preferences/",
        views.NotificationPreferenceView.as_view(),
        name="notification-preferences",
    ),
]
