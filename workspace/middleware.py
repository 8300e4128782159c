"""The signed-in user's own language decides every page, the admin's included.

Runs after AuthenticationMiddleware. Django's LocaleMiddleware (earlier) has already picked
the language cookie or Accept-Language; that choice stays for anonymous visitors. The API
decides after its own authentication (tracker.api.authentication): the request's
Accept-Language when it sends one, else the token's or session's user's language.
"""

from django.conf import settings
from django.utils import translation

LANGUAGES = frozenset(code for code, _name in settings.LANGUAGES)


class UserLanguageMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if (
            not request.path.startswith("/api/")
            and user is not None
            and user.is_authenticated
            and user.language in LANGUAGES
        ):
            translation.activate(user.language)
            request.LANGUAGE_CODE = user.language
        return self.get_response(request)
