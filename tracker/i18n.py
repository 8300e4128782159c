"""Messages in the language of whoever reads them.

A refusal is written once, as an English module constant marked with `gettext_noop` (tests
and callers compare against it; `makemessages` finds it), and raised as `message(CONSTANT,
**params)`: a lazy string that is translated when it is shown (the API's problem document,
an admin message), in the language active then, and filled in with `str.format`. A
translation may use `{name_label}` where the English says `{name}`: the codes of the English
text (`'in_progress'`) read as words in Korean ('진행 중').
"""

from django.utils.functional import lazy
from django.utils.translation import gettext


def _render(template: str, params: dict) -> str:
    translated = gettext(template)
    return translated.format(**params) if params else translated


_lazy_render = lazy(_render, str)


def message(template: str, **params):
    """`template` translated when shown, then filled in with `params` (which may be lazy)."""
    return _lazy_render(template, params)
