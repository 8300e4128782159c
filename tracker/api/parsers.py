"""The API's only request parser: JSON, with a bound on nesting.

DRF's JSONParser uses the standard library, which raises RecursionError (a server error) on a
body of some thousand `[`. orjson stops at 1024 levels with a decode error, fast, whatever
the body's size; our own bound is far lower still, since no request of this API nests
deeper than an object holding a list. Anything beyond is a 400 like any other bad JSON.
"""

import codecs

import orjson
from django.conf import settings
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser as DRFJSONParser

# An object holding a list is depth 2; leave room for clients that wrap things.
MAX_DEPTH = 32
TOO_DEEP = format_lazy(
    _("JSON parse error - nested deeper than {max_depth} levels."), max_depth=MAX_DEPTH
)
JSON_PARSE_ERROR = _("JSON parse error - {error}")


def depth_exceeds(data, limit: int) -> bool:
    """Whether `data` nests lists/objects more than `limit` levels (iteratively, no recursion)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


class JSONParser(DRFJSONParser):
    """application/json in any charset Python knows (UTF-8 by default), parsed by orjson.

    Like DRF's parser in strict mode: NaN and Infinity are refused. Unlike it, numbers beyond
    64-bit integers become floats (no field of ours takes such a number anyway).
    """

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        body = stream.read() if stream is not None else b""
        try:
            if codecs.lookup(encoding).name != "utf-8":
                body = body.decode(encoding).encode("utf-8")
            data = orjson.loads(body)
        except (LookupError, UnicodeError, orjson.JSONDecodeError) as exc:
            raise ParseError(JSON_PARSE_ERROR.format(error=exc)) from None
        if depth_exceeds(data, MAX_DEPTH):
            raise ParseError(TOO_DEEP)
        return data
