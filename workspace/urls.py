from django.contrib.auth import views as auth_views
from django.urls import path

from . import (
    views,
    views_forums,
    views_imports,
    views_inbox,
    views_intake,
    views_plans,
    views_tasks,
)

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
    path("tasks/import/", views_imports.import_page, {"kind": "tasks"}, name="tasks-import"),
    path("tasks/export/<str:fmt>/", views_tasks.task_export, name="tasks-export"),
    path("tasks/<int:pk>/", views.task_detail, name="task"),
    path("tasks/<int:pk>/move/", views.task_move, name="task-move"),
    path("tasks/<int:pk>/report/", views.task_report, name="task-report"),
    path("tasks/<int:pk>/assign/", views.task_assign, name="task-assign"),
    path("tasks/<int:pk>/deadline/", views.task_deadline, name="task-deadline"),
    path("forums/", views_forums.forum_list, name="forums"),
    path("forums/<int:pk>/", views_forums.forum_detail, name="forum"),
    path(
        "outcomes/import/", views_imports.import_page, {"kind": "outcomes"}, name="outcomes-import"
    ),
    path("outcomes/<int:pk>/", views_forums.outcome_detail, name="outcome"),
    path("forums/<int:pk>/intake/", views_intake.forum_intake, name="forum-intake"),
    path("forums/<int:pk>/intake/tasks/", views_intake.intake_tasks, name="intake-tasks"),
    path("intake/drafts/<int:pk>/", views_intake.draft_edit, name="draft-edit"),
    path("intake/drafts/<int:pk>/confirm/", views_intake.draft_confirm, name="draft-confirm"),
    path("intake/drafts/<int:pk>/drop/", views_intake.draft_drop, name="draft-drop"),
    path("inbox/", views_inbox.inbox, name="inbox"),
    path("inbox/<int:pk>/read/", views_inbox.notification_read, name="inbox-read"),
    path("inbox/read-all/", views_inbox.notifications_read_all, name="inbox-read-all"),
    path("plans/", views_plans.plan_list, name="plans"),
    path("plans/<int:pk>/", views_plans.plan_detail, name="plan"),
    path("plans/<int:pk>/print/", views_plans.plan_print, name="plan-print"),
    path("plans/<int:pk>/new-version/", views_plans.plan_new_version, name="plan-new-version"),
]
