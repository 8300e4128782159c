"""Every Korean catalog (the workspace's locale/ko and each app's <app>/locale/ko): complete,
compiled with Python only, no msgid twice, placeholders kept; and the words the models, the
admin and the API show (statuses, kinds, roles, model and field names) all have Korean."""

import gettext
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from django.apps import apps
from django.conf import settings
from django.db import models
from django.utils import translation

ROOT = Path(settings.BASE_DIR)
CATALOGS = sorted(
    [ROOT / "locale/ko/LC_MESSAGES/django.po"]
    + list(ROOT.glob("*/locale/ko/LC_MESSAGES/django.po"))
)
APP_CATALOGS = {path.parts[-5]: path for path in CATALOGS if path.parts[-5] != "locale"}
HANGUL = re.compile(r"[가-힣]")
OWN_APPS = ("tracker", "plans", "notifications")
# Words that read the same in a Korean UI.
SAME_IN_KOREAN = {"URL", "HTTP", "MOU"}


def _read(path):
    with path.open("rb") as handle:
        return read_po(handle, locale="ko")


def test_each_app_keeps_its_own_catalog():
    assert set(OWN_APPS) <= set(APP_CATALOGS), APP_CATALOGS
    makefile = (ROOT / "Makefile").read_text()
    # `make messages` compiles every catalog, the apps' included.
    assert "*/locale/*/LC_MESSAGES/django.po" in makefile


@pytest.mark.parametrize("path", CATALOGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_empty_or_fuzzy_entry(path):
    catalog = _read(path)
    assert not catalog.fuzzy, path
    entries = [message for message in catalog if message.id]
    assert entries
    for message in entries:
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        assert all(strings), f"untranslated in {path}: {message.id!r}"
        assert "fuzzy" not in message.flags, f"fuzzy in {path}: {message.id!r}"


@pytest.mark.parametrize("path", CATALOGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_msgid_twice(path):
    """Babel and msgfmt would keep one of two entries silently: the file must not have two."""
    text = path.read_text()
    # Multi-line msgids start with msgid "" and go on in the lines after: key them whole.
    entries = re.split(r"\n\n+", text)
    keys = []
    for entry in entries:
        lines = [line for line in entry.splitlines() if not line.startswith("#")]
        context, msgid, current = None, [], None
        for line in lines:
            if line.startswith("msgctxt "):
                current, context = "ctx", line[8:]
            elif line.startswith("msgid "):
                current, msgid = "id", [line[6:]]
            elif line.startswith(("msgstr", "msgid_plural")):
                current = None
            elif line.startswith('"') and current == "id":
                msgid.append(line)
        if msgid and msgid != ['""']:
            keys.append((context, "".join(msgid)))
    duplicated = [key for key, count in Counter(keys).items() if count > 1]
    assert not duplicated, f"{path}: {duplicated}"


@pytest.mark.parametrize("path", CATALOGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_catalog_compiles_with_python_only(path, tmp_path):
    target = tmp_path / "django.mo"
    pybabel = Path(sys.executable).parent / "pybabel"
    subprocess.run(
        [str(pybabel), "compile", "-l", "ko", "-i", str(path), "-o", str(target)],
        check=True,
        capture_output=True,
    )
    with target.open("rb") as handle:
        compiled = gettext.GNUTranslations(handle)
    message = next(m for m in _read(path) if m.id and not isinstance(m.id, tuple) and not m.context)
    assert compiled.gettext(message.id) == message.string


PERCENT = re.compile(r"%\((\w+)\)[sd]")
BRACES = re.compile(r"{(\w+)}")


@pytest.mark.parametrize("path", CATALOGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_placeholders_survive_translation(path):
    """A translation keeps every %(name)s of its msgid; a {name} template may say {name_label}
    (the word for a code, see tracker.i18n) but names nothing the code does not pass."""
    for message in _read(path):
        if not message.id:
            continue
        msgid = message.id[0] if isinstance(message.id, tuple) else message.id
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        for string in strings:
            assert set(PERCENT.findall(string)) == set(PERCENT.findall(msgid)), msgid
            names = {name.removesuffix("_label") for name in BRACES.findall(string)}
            assert names <= set(BRACES.findall(msgid)), msgid


# --- What the models show ----------------------------------------------------------------------


def _own_models():
    for app in OWN_APPS:
        yield from apps.get_app_config(app).get_models()


def _korean(text) -> bool:
    return bool(HANGUL.search(str(text))) or str(text) in SAME_IN_KOREAN


def test_every_choice_label_of_the_models_has_korean_words():
    labels = set()
    for model in _own_models():
        for field in model._meta.get_fields():
            if getattr(field, "choices", None) and not field.name.startswith("history_"):
                labels.update((model.__name__, field.name, label) for _, label in field.flatchoices)
    assert len(labels) > 60
    with translation.override("ko"):
        missing = [
            (model, field, str(label))
            for model, field, label in labels
            # A language's own name stays in its language (User.Language).
            if not _korean(label) and field != "language"
        ]
    assert not missing, missing


def test_every_model_and_field_name_has_korean_words():
    with translation.override("ko"):
        missing = []
        for model in _own_models():
            if model._meta.app_label not in OWN_APPS or model.__name__.startswith("Historical"):
                continue
            for name in (model._meta.verbose_name, model._meta.verbose_name_plural):
                if not _korean(name):
                    missing.append((model.__name__, str(name)))
            for field in model._meta.get_fields():
                if field.auto_created or not isinstance(field, models.Field):
                    continue
                if field.model is not model or field.name in ("password", "id"):
                    continue
                if not _korean(field.verbose_name):
                    missing.append((model.__name__, field.name, str(field.verbose_name)))
        assert not missing, missing


def test_the_refusals_read_in_korean():
    from plans.exceptions import NotAllowed, TaskMoved, TransitionNotAllowed, VersionConflict
    from plans.models import Task

    with translation.override("ko"):
        assert str(TransitionNotAllowed("planned", "verified")) == (
            "과제를 '계획'에서 '검증 완료'(으)로 바꿀 수 없습니다."
        )
        assert "'진행 중'" in str(TaskMoved("in_progress", "done"))
        assert "과제" in str(NotAllowed("change", Task))
        assert HANGUL.search(str(VersionConflict(1, 2)))
    # The same objects, read in English, say what the English constants say.
    assert str(TransitionNotAllowed("planned", "verified")) == (
        "A task cannot move from 'planned' to 'verified'."
    )
