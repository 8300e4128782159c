from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("plans", views.PlanWriteViewSet, basename="plan")
router.register("workstreams", views.WorkstreamWriteViewSet, basename="workstream")
router.register("forums", views.ForumWriteViewSet, basename="forum")
router.register("outcomes", views.OutcomeWriteViewSet, basename="outcome")
router.register("plan-participants", views.PlanParticipantViewSet, basename="planparticipant")
router.register("tasks", views.TaskViewSet, basename="task")
router.register("status-updates", views.StatusUpdateViewSet, basename="statusupdate")

urlpatterns = router.urls
