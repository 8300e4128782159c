"""Titles and descriptions in English and Korean (django-modeltranslation registrations).

Each field below gets an `_en` and a `_ko` column; the audit history of each model keeps both
versions. Forums translate their name and summary; outcomes their title (their verbatim text
stays in the language it was agreed in). See tracker/content_language.py.
"""

from modeltranslation.translator import TranslationOptions, translator

from .models import Forum, Outcome, Plan, Task, Workstream

FIELDS = {
    Forum: ("name", "summary"),
    Outcome: ("title",),
    Plan: ("title", "description"),
    Workstream: ("title", "description"),
    Task: ("title", "description"),
}

for model, model_fields in FIELDS.items():
    options = type(
        f"{model.__name__}TranslationOptions",
        (TranslationOptions,),
        # A missing version is NULL (a forum's (name, date) stays unique per language).
        {"fields": model_fields, "empty_values": None},
    )
    translator.register(model, options)
    translator.register(model.history.model, options)
