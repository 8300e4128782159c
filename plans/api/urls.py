from django.urls import re_path
from rest_framework.routers import SimpleRouter

from . import intake, views

router = SimpleRouter()
router.register("plans", views.PlanViewSet, basename="plan")
router.register("workstreams", views.WorkstreamViewSet, basename="workstream")
router.register("forums", views.ForumViewSet, basename="forum")
router.register("outcomes", views.OutcomeViewSet, basename="outcome")
router.register("tasks", views.TaskViewSet, basename="task")
router.register("status-updates", views.StatusUpdateViewSet, basename="statusupdate")

router.register("outcome-drafts", intake.OutcomeDraftViewSet, basename="outcomedraft")

urlpatterns = router.urls + [
    re_path(r"^forums/(?P<pk>[0-9]{1,18})/intake/$", intake.ForumIntakeView.as_view()),
    re_path(r"^forums/(?P<pk>[0-9]{1,18})/intake/tasks/$", intake.ForumIntakeTasksView.as_view()),
]
