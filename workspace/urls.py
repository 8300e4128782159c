from django.contrib.auth import views as auth_views
from django.urls import path

from . import views, views_tasks

app_name = "workspace"

urlpatterns = [
    path("", views.home, name="home"),
    path(
        "signin/",
        auth_views.LoginView.as_view(
            template_name="workspace/login.html", redirect_authenticated_user=True
        ),
        name="login",
    ),
    path("signout/", auth_views.LogoutView.as_view(), name="logout"),
    path("language/", views.set_language, name="language"),
    path("tasks/", views_tasks.task_list, name="tasks"),
    path("tasks/export/<str:fmt>/", views_tasks.task_export, name="tasks-export"),
    path("tasks/<int:pk>/", views.task_detail, name="task"),
    path("tasks/<int:pk>/move/", views.task_move, name="task-move"),
    path("tasks/<int:pk>/report/", views.task_report, name="task-report"),
    path("tasks/<int:pk>/assign/", views.task_assign, name="task-assign"),
    path("tasks/<int:pk>/deadline/", views.task_deadline, name="task-deadline"),
]
