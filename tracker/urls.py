from django.contrib import admin
from django.urls import include, path
from django.utils.translation import gettext, gettext_lazy
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

admin.site.site_header = gettext_lazy("Joint Action Plan Tracker")
admin.site.site_title = gettext_lazy("Joint Plan Tracker")
admin.site.index_title = gettext_lazy("Forums, outcomes, plans and tasks")

api_v1 = [
    path("", include("tracker.api.urls")),
    path("", include("plans.api.urls")),
    path("", include("notifications.api.urls")),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("calendar/<str:key>.ics", include("notifications.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    # The people's pages (home, tasks, sign-in, language) at the root.
    path("", include("workspace.urls")),
]


def handler404(request, exception=None):
    """API paths answer in the API's error format; pages keep Django's."""
    if request.path.startswith("/api/"):
        from tracker.api.errors import problem_json

        return problem_json(request, 404, gettext("Not found."))
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def handler500(request):
    if request.path.startswith("/api/"):
        from tracker.api.errors import problem_json

        return problem_json(request, 500, gettext("The server failed; the error has been logged."))
    from django.views.defaults import server_error

    return server_error(request)
