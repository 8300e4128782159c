"""The admin's side of content in two languages (tracker/content_language.py).

`TranslatedAdmin` (django-modeltranslation's TranslationAdmin) edits the English and the
Korean version of each translated field side by side on one row, searches both, and adds the
list filter "Lacks a translation" (Korean missing / English missing). A title is needed in at
least one of the two languages.
"""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _
from modeltranslation.admin import TranslationAdmin

from tracker import content_language

NEEDS_ONE_LANGUAGE = _("Give it in English or in Korean (or both).")


class LacksTranslationFilter(admin.SimpleListFilter):
    """Rows with text in one language that the other language lacks (any translated field)."""

    title = _("lacks a translation")
    parameter_name = "lacks"

    def lookups(self, request, model_admin):
        return [("ko", _("Korean missing")), ("en", _("English missing"))]

    def queryset(self, request, queryset):
        if self.value() in content_language.LANGUAGES:
            return queryset.filter(content_language.lacks_q(queryset.model, self.value()))
        return queryset


class TranslatedAdmin(TranslationAdmin):
    """Mix in before the admin's other base classes (after the project's own mixins)."""

    class Media:
        css = {"all": ("plans/admin_translations.css",)}

    def _translated(self) -> tuple[str, ...]:
        return content_language.translated_fields(self.model)

    def get_fieldsets(self, request, obj=None):
        # The versions of one field on one row: ("title_en", "title_ko").
        pairs = {
            content_language.localized(field, content_language.DEFAULT_LANGUAGE): tuple(
                content_language.all_columns(self.model, [field])
            )
            for field in self._translated()
        }
        others = {name for pair in pairs.values() for name in pair[1:]}
        fieldsets = []
        for name, options in super().get_fieldsets(request, obj):
            fields = []
            for field in options.get("fields", ()):
                if isinstance(field, str) and field in others:
                    continue
                fields.append(pairs.get(field, field) if isinstance(field, str) else field)
            fieldsets.append((name, {**options, "fields": fields}))
        return fieldsets

    def get_search_fields(self, request):
        translated = set(self._translated())
        fields = []
        for field in super().get_search_fields(request):
            if field in translated:
                fields += content_language.all_columns(self.model, [field])
            else:
                fields.append(field)
        return fields

    def get_list_filter(self, request):
        return [*super().get_list_filter(request), LacksTranslationFilter]

    def patch_translation_field(self, db_field, field, request, **kwargs):
        super().patch_translation_field(db_field, field, request, **kwargs)
        # Neither language is required by itself; the form asks for one of them (below).
        if hasattr(db_field, "translated_field"):
            field.required = False

    def get_form(self, request, obj=None, **kwargs):
        form_class = super().get_form(request, obj, **kwargs)
        required = [
            field for field in self._translated() if not self.model._meta.get_field(field).blank
        ]

        class OneLanguageForm(form_class):
            def clean(self):
                cleaned = super().clean()
                for field in required:
                    names = content_language.all_columns(self._meta.model, [field])
                    if all(name in self.fields for name in names) and not any(
                        cleaned.get(name) for name in names
                    ):
                        self.add_error(names[0], NEEDS_ONE_LANGUAGE)
                return cleaned

        return OneLanguageForm
