"""Content in two languages: the English and Korean versions of titles, descriptions and names.

django-modeltranslation adds a column per language to each registered field (`title_en`,
`title_ko`; the registrations are in `tracker/translation.py` and `plans/translation.py`).
Reading `obj.title` gives the active language's version, or the other language's when it has
none (settings.MODELTRANSLATION_FALLBACK_LANGUAGES); assigning `obj.title` writes the active
language's version. A missing version is NULL.

The original column (`title`) stays NOT NULL and always holds the English version, or the
Korean one when there is no English: `TranslatedContent.save()` saves in the default language,
so SQL reports, exports and the audit history read a stable value whatever language the
writer used.

Queries: the models' managers rewrite `filter(title=...)` and `order_by("title")` to the
active language's column (`title_ko` for a Korean reader). Name the columns explicitly to
search both (`search_q`).
"""

from __future__ import annotations

from contextlib import contextmanager

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import translation

DEFAULT_LANGUAGE: str = settings.MODELTRANSLATION_DEFAULT_LANGUAGE
LANGUAGES: tuple[str, ...] = tuple(settings.MODELTRANSLATION_LANGUAGES)


def translated_fields(model) -> tuple[str, ...]:
    """The registered fields of `model` (e.g. ("title", "description")); () if none."""
    from modeltranslation.translator import NotRegistered, translator

    try:
        return tuple(translator.get_options_for_model(model).get_field_names())
    except NotRegistered:
        return ()


def localized(field: str, language: str) -> str:
    return f"{field}_{language}"


def all_columns(model, fields=None) -> list[str]:
    """Every language's column of `fields` (default: all registered fields of `model`)."""
    fields = translated_fields(model) if fields is None else fields
    return [localized(field, language) for field in fields for language in LANGUAGES]


def active_language() -> str:
    """The active language when it is one content is written in, else the default."""
    language = (translation.get_language() or DEFAULT_LANGUAGE).split("-")[0]
    return language if language in LANGUAGES else DEFAULT_LANGUAGE


def other_language(language: str) -> str:
    return next((code for code in LANGUAGES if code != language), DEFAULT_LANGUAGE)


def version(obj, field: str, language: str) -> str:
    """The stored version of `field` in `language`, "" when there is none (no fallback)."""
    return getattr(obj, localized(field, language), None) or ""


def shown(obj, field: str, language: str | None = None) -> tuple[str, str]:
    """(text, its language): the version in `language` (default: the active one), or the
    other language's when it has none. ("", language) when neither has one."""
    language = language or active_language()
    text = version(obj, field, language)
    if text:
        return text, language
    other = other_language(language)
    text = version(obj, field, other)
    if text:
        return text, other
    return "", language


def search_q(model, fields, value: str) -> Q:
    """Q matching `value` (icontains) in any language of the translated `fields` of `model`
    and in plain `fields` as given."""
    registered = set(translated_fields(model))
    query = Q()
    for field in fields:
        columns = all_columns(model, [field]) if field in registered else [field]
        for column in columns:
            query |= Q(**{f"{column}__icontains": value})
    return query


def lacks_q(model, language: str) -> Q:
    """Rows that have some text in the other language with no version in `language`."""
    other = other_language(language)
    query = Q()
    for field in translated_fields(model):
        missing = Q(**{f"{localized(field, language)}__isnull": True}) | Q(
            **{localized(field, language): ""}
        )
        present = Q(**{f"{localized(field, other)}__isnull": False}) & ~Q(
            **{localized(field, other): ""}
        )
        query |= missing & present
    return query


@contextmanager
def errors_named_as_given(fields):
    """Report a version's errors under the name the caller used: a caller who set `title`
    (the active language's version) hears about `title`, not `title_ko`."""
    try:
        yield
    except ValidationError as exc:
        if hasattr(exc, "error_dict"):
            language = active_language()
            for field in fields:
                version = localized(field, language)
                if version in exc.error_dict:
                    exc.error_dict.setdefault(field, []).extend(exc.error_dict.pop(version))
        raise


def empty_to_none(value):
    """A missing version is NULL, never "" (unique names allow any number of NULLs)."""
    if isinstance(value, str) and not value.strip():
        return None
    return value


class TranslatedContent(models.Model):
    """Base of models with translated fields: the original column follows the English version.

    Saved in the default language, the original column receives the English version or, when
    there is none, the Korean one. `update_fields` naming a translated field (or one of its
    versions) saves all its versions and the original column together.
    """

    class Meta:
        abstract = True

    def save(self, *args, update_fields=None, **kwargs):
        if update_fields is not None:
            update_fields = list(update_fields)
            for field in translated_fields(type(self)):
                names = {field, *all_columns(type(self), [field])}
                if names & set(update_fields):
                    update_fields += [name for name in names if name not in update_fields]
        with translation.override(DEFAULT_LANGUAGE):
            super().save(*args, update_fields=update_fields, **kwargs)

    save.alters_data = True

    def clean_fields(self, exclude=None):
        """Each language's version is checked under its own name (title_en, title_ko); the
        original field only for being empty in both languages."""
        originals = set(translated_fields(type(self)))
        exclude = set(exclude or ())
        errors = {}
        try:
            super().clean_fields(exclude=exclude | originals)
        except ValidationError as exc:
            errors = exc.update_error_dict(errors)
        for field in originals - exclude:
            if not self._meta.get_field(field).blank and not shown(self, field)[0]:
                errors.setdefault(field, []).append(
                    ValidationError(self._meta.get_field(field).error_messages["blank"])
                )
        if errors:
            raise ValidationError(errors)

    def validate_constraints(self, exclude=None):
        """modeltranslation copies each unique constraint per language (name_en + date, ...):
        a clash is reported once."""
        try:
            super().validate_constraints(exclude=exclude)
        except ValidationError as exc:
            if hasattr(exc, "error_dict"):
                for field, errors in exc.error_dict.items():
                    seen, unique = set(), []
                    for error in errors:
                        text = " ".join(error.messages)
                        if text not in seen:
                            seen.add(text)
                            unique.append(error)
                    exc.error_dict[field] = unique
            raise
