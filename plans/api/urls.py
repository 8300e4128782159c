from django.urls import path
from rest_framework.routers import SimpleRouter

from . import imports, views

router = SimpleRouter()
router.register("plans", views.PlanViewSet, basename="plan")
router.register("workstreams", views.WorkstreamViewSet, basename="workstream")
router.register("forums", views.ForumViewSet, basename="forum")
router.register("outcomes", views.OutcomeViewSet, basename="outcome")
router.register("tasks", views.TaskViewSet, basename="task")
router.register("status-updates", views.StatusUpdateViewSet, basename="statusupdate")

urlpatterns = [
    # Before the router: "import" would otherwise be read as a task's id.
    path("tasks/import/", imports.TaskImportView.as_view(), name="task-import"),
    path("outcomes/import/", imports.OutcomeImportView.as_view(), name="outcome-import"),
    *router.urls,
]
