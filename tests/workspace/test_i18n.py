"""Korean and English: the user's own language decides every page (the admin's too), then
Accept-Language; the switch saves it on the user; the Korean catalog is complete, compiled
with Python only, and no Korean page shows a workspace string in English."""

import gettext
import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from django.conf import settings
from django.utils import translation

from plans.models import TaskPriority, TaskStatus
from plans.services import WORKFLOW
from tests.permission_matrix import build_world
from workspace import labels

from .conftest import PO
from .helpers import sign_in, task_url, text

ROOT = Path(settings.BASE_DIR)


@pytest.fixture
def world(db):
    return build_world()


def _korean(user):
    user.language = "ko"
    user.save(update_fields=["language"])
    return user


# --- Which language a page speaks --------------------------------------------------------


def test_anonymous_visitors_get_their_browsers_language(client, db):
    korean = client.get("/signin/", HTTP_ACCEPT_LANGUAGE="ko-KR,ko;q=0.9")
    assert '<html lang="ko">' in korean.content.decode()
    assert "로그인" in text(korean)
    english = client.get("/signin/", HTTP_ACCEPT_LANGUAGE="en-US")
    assert "Sign in" in text(english)


def test_the_users_language_wins_over_the_browsers(client, world):
    user = _korean(world.user("coordinator"))
    response = sign_in(client, user).get(task_url(world.task), HTTP_ACCEPT_LANGUAGE="en-US")
    page = text(response)
    assert "진행 중" in page and "이력" in page
    assert "In progress" not in page


def test_the_admin_follows_the_users_language(client, world):
    user = _korean(world.user("coordinator"))
    response = sign_in(client, user).get("/admin/", HTTP_ACCEPT_LANGUAGE="en-US")
    assert response.status_code == 200
    assert '<html lang="ko"' in response.content.decode()
    assert "로그아웃" in text(response)  # Django's own Korean admin catalog


def test_the_api_keeps_the_requests_language(client, world):
    _korean(world.user("coordinator"))
    sign_in(client, world.user("coordinator"))
    response = client.get("/api/v1/tasks/", HTTP_ACCEPT_LANGUAGE="en")
    assert response["Content-Language"] == "en"


def test_the_switch_saves_the_language_on_the_user(client, world):
    user = world.user("contributor_lead")
    sign_in(client, user)
    response = client.post("/language/", {"language": "ko", "next": task_url(world.task)})
    assert response.status_code == 302 and response["Location"] == task_url(world.task)
    user.refresh_from_db()
    assert user.language == "ko"
    assert "이력" in text(client.get(task_url(world.task)))
    client.post("/language/", {"language": "en", "next": "/"})
    user.refresh_from_db()
    assert user.language == "en"


def test_the_switch_works_before_sign_in_and_refuses_unknown_languages(client, db):
    response = client.post("/language/", {"language": "ko", "next": "/signin/"})
    assert response["Location"] == "/signin/"
    assert "로그인" in text(client.get("/signin/", HTTP_ACCEPT_LANGUAGE="en"))
    assert client.post("/language/", {"language": "fr"}).status_code == 400
    elsewhere = client.post("/language/", {"language": "en", "next": "https://evil.example/"})
    assert elsewhere["Location"] == "/"


def test_the_header_shows_the_viewers_time_zone(client, world):
    page = text(sign_in(client, world.user("viewer")).get("/"))
    assert "Time zone: Asia/Seoul (KST)" in page


# --- The Korean catalog -----------------------------------------------------------------------


def _catalog():
    with PO.open("rb") as handle:
        return read_po(handle, locale="ko")


def test_the_korean_catalog_has_no_empty_or_fuzzy_entry():
    catalog = _catalog()
    assert not catalog.fuzzy
    entries = [message for message in catalog if message.id]
    assert len(entries) > 100
    for message in entries:
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        assert all(strings), f"untranslated: {message.id!r}"
        assert "fuzzy" not in message.flags, f"fuzzy: {message.id!r}"


TEMPLATE_STRINGS = [
    re.compile(r"""{% translate "([^"]+)"(?: as \w+)? %}"""),
    re.compile(r"""{% translate '([^']+)'(?: as \w+)? %}"""),
]
PY_STRINGS = re.compile(r"""(?<![\w.])(?:_|gettext_lazy|gettext)\(\s*"((?:[^"\\]|\\.)+)"\s*[,)]""")
PY_CONTEXT_STRINGS = re.compile(r"""pgettext_lazy\(\s*"([^"]+)",\s*"([^"]+)"\s*\)""")
TEMPLATE_CONTEXT_STRINGS = re.compile(
    r"""{% translate "([^"]+)" context "([^"]+)"(?: as \w+)? %}"""
)
BLOCKS = re.compile(r"{% blocktranslate([^%]*)%}(.*?){% endblocktranslate %}", re.S)
BLOCK_CONTEXT = re.compile(r'context "([^"]+)"')


def _workspace_strings() -> set:
    """Every string the workspace marks for translation (what `make extract-messages` finds)."""
    found = set()
    for path in (ROOT / "workspace").rglob("*.html"):
        source = path.read_text()
        for pattern in TEMPLATE_STRINGS:
            found.update(pattern.findall(source))
        found.update((ctx, msgid) for msgid, ctx in TEMPLATE_CONTEXT_STRINGS.findall(source))
        for header, body in BLOCKS.findall(source):
            singular = body.split("{% plural %}")[0]
            # as makemessages writes it: a literal % doubled, {{ name }} as %(name)s
            msgid = re.sub(r"{{ (\w+) }}", r"%(\1)s", singular.replace("%", "%%"))
            context = BLOCK_CONTEXT.search(header)
            found.add((context.group(1), msgid) if context else msgid)
    for path in (ROOT / "workspace").rglob("*.py"):
        source = re.sub(r'"\s*\n\s*"', "", path.read_text())  # join implicit concatenations
        found.update(PY_STRINGS.findall(source))
        found.update(PY_CONTEXT_STRINGS.findall(source))
    return found


def test_every_workspace_string_is_in_the_korean_catalog():
    catalog = _catalog()
    known = set()
    for message in catalog:
        msgid = message.id[0] if isinstance(message.id, tuple) else message.id
        known.add((message.context, msgid) if message.context else msgid)
    strings = _workspace_strings()
    assert "Report progress" in strings and ("task action", "Mark done") in strings
    missing = {s for s in strings if s not in known and s != BAD_LANGUAGE_CODE}
    assert not missing, f"not in locale/ko/LC_MESSAGES/django.po: {sorted(map(str, missing))}"


BAD_LANGUAGE_CODE = "Unknown language."  # a 400 body for robots, not a page


def test_every_status_priority_and_action_has_korean_words():
    with translation.override("ko"):
        # Korean words, the same the models' own labels (the admin's, the API's) read.
        for status in TaskStatus:
            assert re.search(r"[가-힣]", str(labels.STATUS[status.value])), status
            assert str(labels.STATUS[status.value]) == str(status.label), status
        for priority in TaskPriority:
            assert re.search(r"[가-힣]", str(labels.PRIORITY[priority.value])), priority
            assert str(labels.PRIORITY[priority.value]) == str(priority.label), priority
        for move in WORKFLOW.values():
            assert move.label in labels.MOVE
            assert re.search(r"[가-힣]", str(labels.MOVE[move.label])), move.label


def test_the_catalog_compiles_with_python_only(tmp_path):
    """`make messages` runs this command (Babel): no GNU msgfmt needed."""
    makefile = (ROOT / "Makefile").read_text()
    assert "$(BIN)/pybabel compile" in makefile
    assert re.search(r"^migrate: .*\bmessages\b", makefile, re.M)
    assert re.search(r"^test: .*\bmessages\b", makefile, re.M)
    target = tmp_path / "django.mo"
    pybabel = Path(sys.executable).parent / "pybabel"
    subprocess.run(
        [str(pybabel), "compile", "-l", "ko", "-i", str(PO), "-o", str(target)],
        check=True,
        capture_output=True,
    )
    with target.open("rb") as handle:
        compiled = gettext.GNUTranslations(handle)
    assert compiled.gettext("Report progress") == "진행 상황 보고"
    assert compiled.pgettext("task action", "Mark done") == "완료 처리"


def _english_phrases() -> set[str]:
    """Workspace strings of two words or more without placeholders: none may show on a
    Korean page."""
    return {
        s
        for s in _workspace_strings()
        if isinstance(s, str) and " " in s and "%(" not in s and s != BAD_LANGUAGE_CODE
    }


@pytest.mark.parametrize("role", ["coordinator", "contributor_lead", "manager", "viewer"])
def test_korean_pages_show_no_english_workspace_string(client, world, role):
    user = _korean(world.user(role))
    sign_in(client, user)
    phrases = _english_phrases()
    assert "Report progress" in phrases
    for path in ("/", task_url(world.task)):
        page = text(client.get(path))
        shown = {phrase for phrase in phrases if phrase in page}
        assert not shown, (path, shown)
