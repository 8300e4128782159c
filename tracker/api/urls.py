from django.urls import path
from rest_framework.routers import DefaultRouter

from . import views

router = DefaultRouter()
router.register("organizations", views.OrganizationViewSet, basename="organization")
router.register("tokens", views.ApiTokenViewSet, basename="token")

urlpatterns = [
    path("users/me/", views.MeView.as_view(), name="me"),
    path("auth/token/", views.LoginView.as_view(), name="auth-token"),
    *router.urls,
]
