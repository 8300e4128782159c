"""Organizations' names in English and Korean (django-modeltranslation registrations).

`name` becomes `name_en` and `name_ko` (the Korean name the model had before is `name_ko`),
`acronym` `acronym_en` and `acronym_ko` (e.g. MOTIE / 산업부). The audit history
(HistoricalOrganization) keeps both versions too. See tracker/content_language.py.
"""

from modeltranslation.translator import TranslationOptions, translator

from .models import Organization


class OrganizationTranslationOptions(TranslationOptions):
    fields = ("name", "acronym")
    # A missing version is NULL: the unique name allows any number of organizations without
    # a Korean (or English) name.
    empty_values = None


translator.register(Organization, OrganizationTranslationOptions)
translator.register(Organization.history.model, OrganizationTranslationOptions)
