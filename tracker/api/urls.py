from django.urls import path
from rest_framework.routers import DefaultRouter

from plans.api import views as plan_views

from . import views

router = DefaultRouter()
# Organizations are written under the plan policy (plans.api.views, issue 12).
router.register("organizations", plan_views.OrganizationWriteViewSet, basename="organization")
router.register("tokens", views.ApiTokenViewSet, basename="token")

urlpatterns = [
    path("users/me/", views.MeView.as_view(), name="me"),
    path("auth/token/", views.LoginView.as_view(), name="auth-token"),
    *router.urls,
]
