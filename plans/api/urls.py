from django.urls import path, re_path
from rest_framework.routers import SimpleRouter

from . import changes, imports, intake, views

router = SimpleRouter()
router.register("plans", views.PlanWriteViewSet, basename="plan")
router.register("workstreams", views.WorkstreamWriteViewSet, basename="workstream")
router.register("forums", views.ForumWriteViewSet, basename="forum")
router.register("outcomes", views.OutcomeWriteViewSet, basename="outcome")
router.register("plan-participants", views.PlanParticipantViewSet, basename="planparticipant")
router.register("tasks", views.TaskViewSet, basename="task")
router.register("status-updates", views.StatusUpdateViewSet, basename="statusupdate")

router.register("outcome-drafts", intake.OutcomeDraftViewSet, basename="outcomedraft")

urlpatterns = [
    # Before the router: "import" would otherwise be read as a task's id.
    path("tasks/import/", imports.TaskImportView.as_view(), name="task-import"),
    path("outcomes/import/", imports.OutcomeImportView.as_view(), name="outcome-import"),
    path("changes/", changes.ChangeFeedView.as_view(), name="changes"),
    *router.urls,
    re_path(r"^forums/(?P<pk>[0-9]{1,18})/intake/$", intake.ForumIntakeView.as_view()),
    re_path(r"^forums/(?P<pk>[0-9]{1,18})/intake/tasks/$", intake.ForumIntakeTasksView.as_view()),
]
