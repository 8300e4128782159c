"""The role-based admin, generated from the permission matrix (tests/permission_matrix.py).

Pages are fetched as each role would, signed in with `client.force_login` (the users are
staff because `membership_create` made them so, as in production). Forms are posted the
way a browser would: the fields of the page's form as rendered, with the user's changes.
"""

import datetime as dt
import json
from html.parser import HTMLParser

import pytest
from django.urls import reverse

from plans import services
from plans.admin import AddStatusUpdateInline
from plans.exceptions import VERSION_CONFLICT
from plans.models import StatusUpdate, Task
from tests.factories import FACTORY_EVIDENCE_URL, FACTORY_NOTE, TaskFactory
from tests.permission_matrix import (
    ALLOW,
    EXPECTED,
    HIDDEN,
    ROLES,
    TASK_REF,
    TASK_TITLE,
    TASK_TITLE_PART,
    build_world,
)
from tracker.services import system_user

S = Task.Status
Kind = StatusUpdate.Kind
NOTE = "Casting supplier is three weeks late."
REASON = "The turbine casing supplier moved delivery by a quarter."


@pytest.fixture
def world(db):
    return build_world()


def sign_in(client, world, role):
    if role != "anonymous":
        client.force_login(world.user(role))
    return client


def url(name, *args, **query):
    path = reverse(f"admin:{name}", args=args)
    if query:
        path += "?" + "&".join(f"{key}={value}" for key, value in query.items())
    return path


def html(response) -> str:
    return response.content.decode()


def messages_of(response, level: str) -> list[str]:
    return [str(m) for m in response.context["messages"] if m.level_tag == level]


def assert_login_redirect(response):
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


class _FormFields(HTMLParser):
    """What a browser would submit from the form with a given id."""

    def __init__(self, form_id):
        super().__init__(convert_charrefs=True)
        self.form_id, self.inside, self.fields = form_id, False, []
        self._select = self._textarea = None
        self._options: list[tuple[str, bool]] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.inside = attrs.get("id") == self.form_id
        if not self.inside:
            return
        name = attrs.get("name")
        if tag == "input" and name and "__prefix__" not in name:
            kind = attrs.get("type", "text")
            if kind in ("submit", "button", "image", "reset", "file"):
                return
            if kind in ("checkbox", "radio") and "checked" not in attrs:
                return
            self.fields.append((name, attrs.get("value") or ("on" if kind == "checkbox" else "")))
        elif tag == "select" and name and "__prefix__" not in name:
            self._select, self._options = name, []
        elif tag == "option" and self._select:
            self._options.append((attrs.get("value", ""), "selected" in attrs))
        elif tag == "textarea" and name and "__prefix__" not in name:
            self._textarea = [name, ""]

    def handle_data(self, data):
        if self._textarea is not None:
            self._textarea[1] += data

    def handle_endtag(self, tag):
        if tag == "form":
            self.inside = False
        elif tag == "select" and self._select:
            chosen = [value for value, selected in self._options if selected]
            if not chosen and self._options:
                chosen = [self._options[0][0]]
            self.fields.extend((self._select, value) for value in chosen)
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            self.fields.append((self._textarea[0], self._textarea[1].lstrip("\n")))
            self._textarea = None


def form_data(response, form_id) -> dict:
    return _fields(html(response), form_id)


def _fields(page: str, form_id: str) -> dict:
    parser = _FormFields(form_id)
    parser.feed(page)
    assert parser.fields, f"no form #{form_id} on the page"
    data: dict[str, list[str]] = {}
    for name, value in parser.fields:
        data.setdefault(name, []).append(value)
    return data


def status_update_formset(response):
    """The formset of the "Add a status update" inline on a task's change page."""
    (inline,) = [
        inline
        for inline in response.context["inline_admin_formsets"]
        if isinstance(inline.opts, AddStatusUpdateInline)
    ]
    return inline.formset


def status_update_prefix(response) -> str:
    return status_update_formset(response).prefix


def move_choices(response) -> set[str]:
    form = status_update_formset(response).forms[0]
    return {value for value, _label in form.fields["move"].choices if value}


def action_choices(response) -> set[str]:
    """The actions offered in the changelist's <select> (none at all: no select)."""
    action_form = response.context["action_form"]
    if action_form is None:
        assert 'name="action"' not in html(response)
        return set()
    return {value for value, _label in action_form.fields["action"].choices if value}


# --- Pages per role, from the matrix ---------------------------------------------------------

# model name in the matrix -> (admin url prefix, the world's object)
PAGES = {
    "task": ("plans_task", lambda world: world.task),
    "plan": ("plans_plan", lambda world: world.plan_a),
    "forum": ("plans_forum", lambda world: world.forum),
    "membership": ("tracker_membership", lambda world: world.membership),
}
# What a user must be allowed to see the Save button on the change page: tasks open for
# contributors who may add status updates there.
SAVE_ACTIONS = {"task": ("change", "add_update")}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("model", sorted(PAGES))
def test_changelist_change_and_history_pages_follow_the_matrix(client, world, model, role):
    prefix, get_obj = PAGES[model]
    obj = get_obj(world)
    change_url = url(f"{prefix}_change", obj.pk)
    pages = {
        # Tasks default to "My tasks" for contributors; ask for everything in sight.
        "changelist": url(f"{prefix}_changelist", **({"scope": "all"} if model == "task" else {})),
        "change": change_url,
        "history": url(f"{prefix}_history", obj.pk),
    }
    sign_in(client, world, role)

    if role == "anonymous":
        for page in pages.values():
            assert_login_redirect(client.get(page))
        return

    sees = EXPECTED[(model, "view")][role] == ALLOW
    assert EXPECTED[(model, "view")][role] in (ALLOW, HIDDEN)

    listing = client.get(pages["changelist"])
    assert listing.status_code in (200, 403)
    assert (change_url in html(listing)) is sees
    if sees:
        assert listing.status_code == 200

    change = client.get(pages["change"])
    assert change.status_code == (200 if sees else 404)
    history = client.get(pages["history"])
    assert history.status_code == (200 if sees else 404)

    if sees:
        may_save = any(
            EXPECTED[(model, action)][role] == ALLOW
            for action in SAVE_ACTIONS.get(model, ("change",))
        )
        assert ('name="_save"' in html(change)) is may_save
    if model == "task":
        assert (TASK_REF in html(listing)) is sees
        if not sees:
            for response in (listing, change, history):
                assert TASK_TITLE not in html(response)


DECOY_TITLE = "Offshore turbine pilot survey"


def _decoys(world) -> list[Task]:
    """Tasks whose titles also match the search, seen by the roles T is hidden from, so
    their lists and searches have something to show (a 403 would prove nothing)."""
    return [
        TaskFactory(
            plan=world.plan_a,
            ref="SC-90",
            title=DECOY_TITLE,
            lead_organization=world.other,
            visibility=Task.Visibility.PLAN,
        ),
        TaskFactory(plan=world.plan_b, ref="SC-91", title=DECOY_TITLE, lead_organization=world.m2),
    ]


@pytest.mark.parametrize("role", ROLES)
def test_task_autocomplete_offers_only_visible_tasks(client, world, role):
    _decoys(world)
    sign_in(client, world, role)
    response = client.get(
        url(
            "autocomplete",
            app_label="plans",
            model_name="task",
            field_name="depends_on",
            term=TASK_TITLE_PART.replace(" ", "+"),
        )
    )
    if role == "anonymous":
        assert_login_redirect(response)
        return
    assert response.status_code == 200
    texts = [row["text"] for row in json.loads(html(response))["results"]]
    assert (f"{TASK_REF} {TASK_TITLE}" in texts) is (EXPECTED[("task", "view")][role] == ALLOW)
    assert texts  # every signed-in role sees one of the decoys at least
    if EXPECTED[("task", "view")][role] != ALLOW:
        assert TASK_TITLE not in html(response)


@pytest.mark.parametrize("role", ROLES)
def test_task_search_and_plan_filter_never_reveal_a_hidden_task(client, world, role):
    _decoys(world)
    sign_in(client, world, role)
    sees = EXPECTED[("task", "view")][role] == ALLOW
    pages = [
        url("plans_task_changelist", q=TASK_TITLE_PART.replace(" ", "+"), scope="all"),
        url("plans_task_changelist", plan__id__exact=world.plan_a.pk, scope="all"),
        url("plans_task_changelist", q=TASK_REF, scope="all"),
    ]
    for page in pages:
        response = client.get(page)
        if role == "anonymous":
            assert_login_redirect(response)
            continue
        assert response.status_code == 200, page
        assert (TASK_TITLE in html(response)) is sees, page
        if f"q={TASK_REF}" not in page:  # the search box echoes the query
            assert (TASK_REF in html(response)) is sees, page


# --- The task change form --------------------------------------------------------------------


def test_contributor_cannot_change_fields_with_a_crafted_post(client, world):
    sign_in(client, world, "contributor_lead")
    change_url = url("plans_task_change", world.task.pk)
    page = client.get(change_url)
    assert page.status_code == 200
    assert 'name="title_en"' not in html(page) and 'name="due_date"' not in html(page)
    before = Task.objects.filter(pk=world.task.pk).values().get()
    updates_before = StatusUpdate.objects.count()

    data = form_data(page, "task_form")
    data.update(title_en=["Renamed by a crafted form"], due_date=["2035-01-01"], _save=["Save"])
    client.post(change_url, data)

    task = Task.objects.get(pk=world.task.pk)
    assert (task.title, task.due_date) == (TASK_TITLE, before["due_date"])
    assert task.version == before["version"]
    assert StatusUpdate.objects.count() == updates_before


def test_contributor_adds_a_status_update_with_a_transition_in_the_inline(client, world):
    contributor = world.user("contributor_lead")
    sign_in(client, world, "contributor_lead")
    change_url = url("plans_task_change", world.task.pk)
    page = client.get(change_url)
    # Lead moves from in_progress; cancelling is the coordinator's.
    assert move_choices(page) == {S.AT_RISK, S.BLOCKED, S.DONE}
    prefix = status_update_prefix(page)

    data = form_data(page, "task_form")
    data.update({f"{prefix}-0-move": [S.AT_RISK], f"{prefix}-0-note": [NOTE], "_save": ["Save"]})
    response = client.post(change_url, data, follow=True)

    assert not messages_of(response, "error")
    task = Task.objects.get(pk=world.task.pk)
    assert task.status == S.AT_RISK
    update = StatusUpdate.objects.filter(task=task).latest("pk")
    assert (update.kind, update.author, update.status_from, update.status_to, update.note) == (
        Kind.TRANSITION,
        contributor,
        S.IN_PROGRESS,
        S.AT_RISK,
        NOTE,
    )


def test_supporting_contributor_adds_a_note_in_the_inline(client, world):
    supporting = world.user("contributor_supporting")
    sign_in(client, world, "contributor_supporting")
    change_url = url("plans_task_change", world.task.pk)
    page = client.get(change_url)
    assert move_choices(page) == set()
    prefix = status_update_prefix(page)
    assert f"{prefix}-0-new_progress" not in html(page)

    data = form_data(page, "task_form")
    data.update({f"{prefix}-0-note": [NOTE], "_save": ["Save"]})
    response = client.post(change_url, data, follow=True)

    assert not messages_of(response, "error")
    update = StatusUpdate.objects.filter(task=world.task).latest("pk")
    assert (update.kind, update.author, update.note) == (Kind.PROGRESS, supporting, NOTE)
    assert Task.objects.get(pk=world.task.pk).status == S.IN_PROGRESS


def test_coordinator_adds_a_note_in_the_inline(client, world):
    coordinator = world.user("coordinator")
    sign_in(client, world, "coordinator")
    change_url = url("plans_task_change", world.task.pk)
    page = client.get(change_url)
    prefix = status_update_prefix(page)
    version = Task.objects.get(pk=world.task.pk).version

    data = form_data(page, "task_form")
    data.update({f"{prefix}-0-note": [NOTE], "_save": ["Save"]})
    response = client.post(change_url, data, follow=True)

    assert not messages_of(response, "error")
    update = StatusUpdate.objects.filter(task=world.task).latest("pk")
    assert (update.kind, update.author, update.note) == (Kind.PROGRESS, coordinator, NOTE)
    assert Task.objects.get(pk=world.task.pk).version == version  # a note is not an edit


def _make_done(world):
    services.task_transition(
        actor=system_user(),
        task=world.task,
        to_status=S.DONE,
        expected_from=S.IN_PROGRESS,
        note=FACTORY_NOTE,
        evidence_url=FACTORY_EVIDENCE_URL,
    )
    world.task.refresh_from_db()


def test_contributor_is_not_offered_verify_and_cannot_post_it(client, world):
    _make_done(world)
    sign_in(client, world, "coordinator")
    change_url = url("plans_task_change", world.task.pk)
    assert S.VERIFIED in move_choices(client.get(change_url))

    sign_in(client, world, "contributor_lead")
    page = client.get(change_url)
    assert page.status_code == 200
    assert move_choices(page) == set()
    prefix = status_update_prefix(page)
    updates_before = StatusUpdate.objects.count()

    data = form_data(page, "task_form")
    data.update({f"{prefix}-0-move": [S.VERIFIED], f"{prefix}-0-note": [NOTE], "_save": ["Save"]})
    response = client.post(change_url, data)

    assert response.status_code == 200  # the form again, with the error
    assert "move" in status_update_formset(response).forms[0].errors
    assert Task.objects.get(pk=world.task.pk).status == S.DONE
    assert StatusUpdate.objects.count() == updates_before


def test_history_shows_the_coordinator_who_changed_the_task_in_the_admin(client, world):
    coordinator = world.user("coordinator")
    sign_in(client, world, "coordinator")
    change_url = url("plans_task_change", world.task.pk)
    page = client.get(change_url)
    data = form_data(page, "task_form")
    # The title is the coordinator's to edit; the deadline and status only change through
    # the workflow (with a reason, a note), so a crafted value for them is ignored.
    data.update(
        title_en=["Hydrogen turbine pilot line, phase two"],
        due_date=["2035-01-01"],
        status=[S.CANCELLED],
        _save=["Save"],
    )

    response = client.post(change_url, data)

    assert response.status_code == 302
    task = Task.objects.get(pk=world.task.pk)
    assert task.title == "Hydrogen turbine pilot line, phase two"
    assert (task.due_date, task.status) == (world.task.due_date, S.IN_PROGRESS)
    assert task.updated_by == coordinator

    history = client.get(url("plans_task_history", world.task.pk))
    assert history.status_code == 200
    latest = task.history.latest("history_date")
    assert latest.history_user == coordinator
    page = html(history)
    start = page.index('id="change-history"')
    table = page[start : page.index("</table>", start)]
    assert coordinator.username in table


# --- Admin actions ---------------------------------------------------------------------------

ACTIONS_FOR = {
    "verify": "verify",
    "return_for_revision": "verify",
    "cancel": "verify",
    "assign": "assign",
    "change_deadline": "change_deadline",
}


@pytest.mark.parametrize("role", ["viewer", "contributor_lead", "manager", "coordinator"])
def test_changelist_offers_the_actions_the_role_may_take(client, world, role):
    sign_in(client, world, role)
    response = client.get(url("plans_task_changelist", scope="all"))
    assert response.status_code == 200
    offered = action_choices(response)
    for action_name, needs in ACTIONS_FOR.items():
        assert (action_name in offered) is (EXPECTED[("task", needs)][role] == ALLOW), action_name
    moves = EXPECTED[("task", "transition")][role] == ALLOW
    assert ("change_status" in offered) is moves


def test_coordinator_verifies_a_done_task_with_the_action(client, world):
    _make_done(world)
    coordinator = world.user("coordinator")
    sign_in(client, world, "coordinator")
    changelist = url("plans_task_changelist", scope="all")

    # "Go" shows the tasks to verify, with the status and version each one has ...
    intermediate = client.post(
        changelist, {"action": "verify", "_selected_action": [world.task.pk], "index": "0"}
    )
    assert intermediate.status_code == 200
    assert Task.objects.get(pk=world.task.pk).status == S.DONE
    data = _intermediate_data(intermediate)
    assert data[f"version_{world.task.pk}"] == [str(world.task.version)]
    # ... and "Apply" verifies them.
    response = client.post(changelist, data)

    assert response.status_code == 302
    task = Task.objects.get(pk=world.task.pk)
    assert task.status == S.VERIFIED
    update = StatusUpdate.objects.filter(task=task).latest("pk")
    assert (update.author, update.status_from, update.status_to) == (
        coordinator,
        S.DONE,
        S.VERIFIED,
    )


def test_verify_refuses_a_task_changed_after_its_page_was_shown(client, world):
    """Verify completion carries the version its page showed (If-Match), as the others do."""
    _make_done(world)
    sign_in(client, world, "coordinator")
    changelist = url("plans_task_changelist", scope="all")
    intermediate = client.post(
        changelist, {"action": "verify", "_selected_action": [world.task.pk], "index": "0"}
    )
    data = _intermediate_data(intermediate)
    # Meanwhile someone assigns it: the task moves to a new version, still done.
    services.task_assign(
        actor=system_user(), task=world.task, assignee=world.user("contributor_lead")
    )
    assert Task.objects.get(pk=world.task.pk).version != world.task.version

    response = client.post(changelist, data, follow=True)

    assert Task.objects.get(pk=world.task.pk).status == S.DONE
    errors = messages_of(response, "error")
    assert len(errors) == 1 and errors[0].startswith(f"{TASK_REF}: ")
    assert "version" in errors[0]


def test_coordinator_changes_a_deadline_with_the_action_and_its_form(client, world):
    coordinator = world.user("coordinator")
    sign_in(client, world, "coordinator")
    changelist = url("plans_task_changelist", scope="all")
    new_due = dt.date(2031, 3, 31)

    # "Go" on the changelist asks for the new date and the reason ...
    intermediate = client.post(
        changelist, {"action": "change_deadline", "_selected_action": [world.task.pk], "index": "0"}
    )
    assert intermediate.status_code == 200
    assert Task.objects.get(pk=world.task.pk).due_date == world.task.due_date
    # ... and "Apply" on that form makes the change.
    data = _intermediate_data(intermediate)
    data.update(due_date=[new_due.isoformat()], reason=[REASON])
    assert data["apply"] == ["yes"]
    response = client.post(changelist, data)

    assert response.status_code == 302
    task = Task.objects.get(pk=world.task.pk)
    assert task.due_date == new_due
    update = StatusUpdate.objects.filter(task=task).latest("pk")
    assert (update.kind, update.author, update.due_date_to, update.note) == (
        Kind.DEADLINE_CHANGE,
        coordinator,
        new_due,
        REASON,
    )


def _intermediate_data(response) -> dict:
    """The fields of the action's own form (the page's last form, which has no id)."""
    page = html(response)
    start = page.rindex('<form method="post">')
    marked = page[:start] + '<form method="post" id="action-form">' + page[start + 20 :]
    return _fields(marked, "action-form")


def test_contributor_cannot_run_coordinator_actions_with_a_crafted_post(client, world):
    _make_done(world)
    sign_in(client, world, "contributor_lead")
    changelist = url("plans_task_changelist", scope="all")
    listing = client.get(changelist)
    offered = action_choices(listing)
    assert {"verify", "change_deadline", "assign"}.isdisjoint(offered)
    for name in ("verify", "change_deadline", "assign"):
        assert f'value="{name}"' not in html(listing)
    before = Task.objects.filter(pk=world.task.pk).values().get()
    updates_before = StatusUpdate.objects.count()

    client.post(changelist, {"action": "verify", "_selected_action": [world.task.pk], "index": "0"})
    client.post(
        changelist,
        {
            "action": "change_deadline",
            "_selected_action": [world.task.pk],
            "apply": "yes",
            "due_date": "2031-03-31",
            "reason": REASON,
        },
    )
    client.post(
        changelist,
        {
            "action": "assign",
            "_selected_action": [world.task.pk],
            "apply": "yes",
            "assignee": world.user("contributor_lead").pk,
        },
    )

    assert Task.objects.filter(pk=world.task.pk).values().get() == before
    assert StatusUpdate.objects.count() == updates_before


# --- Stale pages: every form writes with the version it loaded -----------------------------

CONFLICT = VERSION_CONFLICT.split(" (")[0]  # "The task has changed since you read it"


def _row(world):
    return Task.objects.filter(pk=world.task.pk).values().get(), StatusUpdate.objects.count()


def _change_meanwhile(world):
    """Someone else's write after the page was loaded; the row and history as it left them."""
    services.task_update(
        actor=world.user("coordinator"), task=world.task, description="Changed meanwhile."
    )
    return _row(world)


def _conflict_messages(response) -> list[str]:
    return [m for m in messages_of(response, "error") if CONFLICT in m]


def test_change_form_carries_its_version_and_refuses_a_stale_save(client, world):
    sign_in(client, world, "coordinator")
    change_url = url("plans_task_change", world.task.pk)
    page = client.get(change_url)
    data = form_data(page, "task_form")
    assert data["loaded_version"] == [str(world.task.version)]
    after = _change_meanwhile(world)

    # The stale page would put back the old description along with the new title.
    data.update(title_en=["Renamed on a stale page"], _save=["Save"])
    response = client.post(change_url, data, follow=True)

    assert len(_conflict_messages(response)) == 1
    assert _row(world) == after
    # Reloaded, the same edit goes through.
    data = form_data(client.get(change_url), "task_form")
    data.update(title_en=["Renamed on a fresh page"], _save=["Save"])
    client.post(change_url, data)
    task = Task.objects.get(pk=world.task.pk)
    assert (task.title, task.description) == ("Renamed on a fresh page", "Changed meanwhile.")
    assert task.version == after[0]["version"] + 1


STALE_INLINE = {
    "note": ("contributor_supporting", {"note": NOTE}),
    "progress": ("contributor_lead", {"new_progress": "61", "note": NOTE}),
    "transition": ("contributor_lead", {"move": S.AT_RISK, "note": NOTE}),
    "transition and progress": ("coordinator", {"move": S.AT_RISK, "note": NOTE,
                                                "new_progress": "61"}),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(STALE_INLINE))
def test_status_update_inline_refuses_a_stale_page_and_writes_nothing(client, world, case):
    role, fields = STALE_INLINE[case]
    sign_in(client, world, role)
    change_url = url("plans_task_change", world.task.pk)
    page = client.get(change_url)
    prefix = status_update_prefix(page)
    after = _change_meanwhile(world)

    data = form_data(page, "task_form")
    data.update({f"{prefix}-0-{name}": [value] for name, value in fields.items()})
    data["_save"] = ["Save"]
    response = client.post(change_url, data, follow=True)

    assert len(_conflict_messages(response)) == 1
    assert _row(world) == after


def test_one_save_chains_its_writes_from_the_loaded_version(client, world):
    """The form's edit, then the inline's transition and progress: each write expects the
    version the previous one left, so a fresh page saves all three."""
    sign_in(client, world, "coordinator")
    change_url = url("plans_task_change", world.task.pk)
    page = client.get(change_url)
    prefix = status_update_prefix(page)
    data = form_data(page, "task_form")
    data.update(
        {
            "title_en": ["Renamed and flagged"],
            f"{prefix}-0-move": [S.AT_RISK],
            f"{prefix}-0-note": [NOTE],
            f"{prefix}-0-new_progress": ["61"],
            "_save": ["Save"],
        }
    )
    response = client.post(change_url, data, follow=True)

    assert not messages_of(response, "error")
    task = Task.objects.get(pk=world.task.pk)
    assert (task.title, task.status, task.progress) == ("Renamed and flagged", S.AT_RISK, 61)
    assert task.version == world.task.version + 3


ACTION_FORMS = {
    "change_status": lambda world: {"to_status": [S.AT_RISK], "note": [NOTE]},
    "assign": lambda world: {"assignee": [str(world.user("contributor_lead").pk)]},
    "change_deadline": lambda world: {"due_date": ["2031-03-31"], "reason": [REASON]},
    "cancel": lambda world: {"note": [NOTE]},
}


@pytest.mark.parametrize("action", sorted(ACTION_FORMS))
def test_action_pages_refuse_a_task_changed_meanwhile(client, world, action):
    sign_in(client, world, "coordinator")
    changelist = url("plans_task_changelist", scope="all")
    start = {"action": action, "_selected_action": [world.task.pk], "index": "0"}
    intermediate = client.post(changelist, start)
    data = _intermediate_data(intermediate)
    assert data[f"version_{world.task.pk}"] == [str(world.task.version)]
    after = _change_meanwhile(world)

    data.update(ACTION_FORMS[action](world))
    response = client.post(changelist, data, follow=True)

    (refused,) = _conflict_messages(response)
    assert refused.startswith(f"{TASK_REF}: ")
    assert not messages_of(response, "success")
    assert _row(world) == after
    # From a page showing the task as it now is, the action goes through.
    data = _intermediate_data(client.post(changelist, start))
    data.update(ACTION_FORMS[action](world))
    response = client.post(changelist, data, follow=True)
    assert messages_of(response, "success") and not messages_of(response, "error")
    assert Task.objects.get(pk=world.task.pk).version == after[0]["version"] + 1


def test_action_page_redisplayed_with_errors_keeps_the_version_it_first_showed(client, world):
    sign_in(client, world, "coordinator")
    changelist = url("plans_task_changelist", scope="all")
    start = {"action": "change_deadline", "_selected_action": [world.task.pk], "index": "0"}
    data = _intermediate_data(client.post(changelist, start))
    after = _change_meanwhile(world)

    data.update(due_date=["2031-03-31"])  # no reason: the form comes back
    again = client.post(changelist, data)
    assert again.status_code == 200
    data = _intermediate_data(again)
    assert data[f"version_{world.task.pk}"] == [str(world.task.version)]
    data.update(reason=[REASON])
    response = client.post(changelist, data, follow=True)

    assert len(_conflict_messages(response)) == 1
    assert _row(world) == after


def test_tampered_versions_are_taken_as_stale(client, world):
    sign_in(client, world, "coordinator")
    before = _row(world)
    change_url = url("plans_task_change", world.task.pk)
    data = form_data(client.get(change_url), "task_form")
    data.update(title_en=["Renamed"], loaded_version=["abc"], _save=["Save"])
    assert len(_conflict_messages(client.post(change_url, data, follow=True))) == 1

    changelist = url("plans_task_changelist", scope="all")
    start = {"action": "change_deadline", "_selected_action": [world.task.pk], "index": "0"}
    data = _intermediate_data(client.post(changelist, start))
    data.update({"reason": [REASON], "due_date": ["2031-03-31"], f"version_{world.task.pk}": ["x"]})
    assert len(_conflict_messages(client.post(changelist, data, follow=True))) == 1
    assert _row(world) == before


# --- "My tasks" ------------------------------------------------------------------------------


def test_my_tasks_is_the_default_for_contributors_and_all_shows_the_rest(client, world):
    plan_wide = TaskFactory(
        plan=world.plan_a,
        ref="SC-78",
        title="Plan-wide hydrogen standards survey",
        lead_organization=world.other,
        visibility=Task.Visibility.PLAN,
        status=S.IN_PROGRESS,
    )
    t_url = url("plans_task_change", world.task.pk)
    other_url = url("plans_task_change", plan_wide.pk)

    sign_in(client, world, "contributor_lead")
    mine = html(client.get(url("plans_task_changelist")))
    assert t_url in mine
    assert other_url not in mine
    everything = html(client.get(url("plans_task_changelist", scope="all")))
    assert t_url in everything and other_url in everything

    client.logout()
    sign_in(client, world, "coordinator")
    default = html(client.get(url("plans_task_changelist")))
    assert t_url in default and other_url in default


def test_my_tasks_leaves_out_closed_tasks(client, world):
    _make_done(world)
    sign_in(client, world, "contributor_lead")
    t_url = url("plans_task_change", world.task.pk)
    assert t_url not in html(client.get(url("plans_task_changelist")))
    assert t_url in html(client.get(url("plans_task_changelist", scope="all")))
