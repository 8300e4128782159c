"""JSON rendering with orjson: the same documents as DRF's JSONRenderer, written faster.

DRF's renderer runs the standard library's pure-Python encoder path for every list page.
This one hands the data to orjson and keeps DRF's output where the two would differ:
datetimes, dates and times go through DRF's own encoder (orjson would write them in its own
format), dataclasses are not special-cased, U+2028/U+2029 are escaped as DRF escapes them,
and anything orjson refuses (integers beyond 64 bits, non-string keys) or a request for
indented output falls back to DRF's renderer.

Two differences remain, neither reachable from our serializers: a float with a small
exponent is spelled 1e-7 rather than 1e-07 (the same JSON number), and NaN or infinity is
written as null where DRF's strict renderer raised ValueError.
"""

import orjson
from rest_framework.renderers import JSONRenderer
from rest_framework.utils.encoders import JSONEncoder

OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


class OrjsonRenderer(JSONRenderer):
    """A drop-in JSONRenderer (same media type and format) for compact UTF-8 output."""

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        fast = self.compact and not self.ensure_ascii
        if fast and self.get_indent(accepted_media_type, renderer_context or {}) is None:
            try:
                ret = orjson.dumps(data, default=JSONEncoder().default, option=OPTIONS)
            except orjson.JSONEncodeError:
                pass  # e.g. an int beyond 64 bits or a non-string key: DRF's way below
            else:
                if b"\xe2\x80\xa8" in ret or b"\xe2\x80\xa9" in ret:
                    ret = ret.replace(b"\xe2\x80\xa8", b"\\u2028").replace(
                        b"\xe2\x80\xa9", b"\\u2029"
                    )
                return ret
        return super().render(data, accepted_media_type, renderer_context)
