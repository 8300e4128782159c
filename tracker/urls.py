from django.contrib import admin
from django.http import HttpResponseRedirect
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

admin.site.site_header = "Joint Action Plan Tracker"
admin.site.site_title = "Joint Plan Tracker"
admin.site.index_title = "Forums, outcomes, plans and tasks"

api_v1 = [
    path("", include("tracker.api.urls")),
    path("", include("plans.api.urls")),
    path("", include("notifications.api.urls")),
]

urlpatterns = [
    path("", lambda request: HttpResponseRedirect("/admin/")),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
]
