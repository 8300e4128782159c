from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("plans", views.PlanViewSet, basename="plan")
router.register("workstreams", views.WorkstreamViewSet, basename="workstream")
router.register("forums", views.ForumViewSet, basename="forum")
router.register("outcomes", views.OutcomeViewSet, basename="outcome")
router.register("tasks", views.TaskViewSet, basename="task")
router.register("status-updates", views.StatusUpdateViewSet, basename="statusupdate")

urlpatterns = router.urls
