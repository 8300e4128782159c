from django.contrib import admin
from django.http import HttpResponseRedirect
from django.urls import path

admin.site.site_header = "Joint Action Plan Tracker"
admin.site.site_title = "Joint Plan Tracker"
admin.site.index_title = "Forums, outcomes, plans and tasks"

urlpatterns = [
    path("", lambda request: HttpResponseRedirect("/admin/")),
    path("admin/", admin.site.urls),
]
