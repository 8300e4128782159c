from django.urls import re_path
from rest_framework.routers import SimpleRouter

from . import intake, views

router = SimpleRouter()
router.register("plans", views.PlanWriteViewSet, basename="plan")
router.register("workstreams", views.WorkstreamWriteViewSet, basename="workstream")
router.register("forums", views.ForumWriteViewSet, basename="forum")
router.register("outcomes", views.OutcomeWriteViewSet, basename="outcome")
router.register("plan-participants", views.PlanParticipantViewSet, basename="planparticipant")
router.register("tasks", views.TaskViewSet, basename="task")
router.register("status-updates", views.StatusUpdateViewSet, basename="statusupdate")

router.register("outcome-drafts", intake.OutcomeDraftViewSet, basename="outcomedraft")

urlpatterns = router.urls + [
    re_path(r"^forums/(?P<pk>[0-9]{1,18})/intake/$", intake.ForumIntakeView.as_view()),
    re_path(r"^forums/(?P<pk>[0-9]{1,18})/intake/tasks/$", intake.ForumIntakeTasksView.as_view()),
]
