"""Request-body parsing: JSON (or text/plain holding JSON) into pydantic models, JSON errors out."""
from __future__ import annotations

import json
import math
import re
from decimal import Decimal
from typing import Any, TypeVar

from flask import Request
from pydantic import BaseModel, ValidationError

from server.core.errors import Invalid, Malformed

M = TypeVar("M", bound=BaseModel)


# Limits on what a JSON body may hold, checked before any model sees it (the body's size is
# capped before parsing by MAX_CONTENT_LENGTH). The contract's deepest body (an event with a
# cart of items) is 6 levels deep; no legitimate string is longer than a long URL.
MAX_JSON_DEPTH = 10
MAX_JSON_STRING = 4096
MAX_JSON_ITEMS = 1000  # members of one object or elements of one array
# Integers beyond I-JSON's safe range (RFC 7493) are not portable and overflow our columns.
MAX_JSON_INT = 2**53 - 1


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def decode_json(raw: bytes | str, *, parse_float: Any = None) -> Any:
    """Parse JSON within the limits above; raises Malformed for anything else.

    Refused: invalid JSON or UTF-8, ``NaN``/``Infinity``, nesting deeper than MAX_JSON_DEPTH,
    strings or keys longer than MAX_JSON_STRING or holding NUL or lone surrogates (PostgreSQL
    cannot store them), containers with more than MAX_JSON_ITEMS members, integers beyond
    ±MAX_JSON_INT and non-finite numbers.
    """
    try:
        data = json.loads(raw, parse_constant=_reject_constant, parse_float=parse_float)
    except RecursionError:
        raise Malformed(f"the body is nested deeper than {MAX_JSON_DEPTH} levels") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise Malformed(f"the body is not valid JSON: {exc}") from None
    if parse_float is not None or not isinstance(raw, bytes) or not _within_limits_by_its_text(raw):
        check_json_limits(data)
    return data


# In a body's text: an integer of 16 digits or more (beyond MAX_JSON_INT) or a 3-digit exponent
# (a float that may overflow); either sends the body to the full walk.
_BIG_NUMBER = re.compile(rb"\d{16}|[eE][+-]?\d{3}")
_SHORT_TEXT = min(MAX_JSON_STRING, 2 * MAX_JSON_ITEMS)


def _within_limits_by_its_text(raw: bytes) -> bool:
    """Whether a body's bytes alone prove it within the limits (the usual small event batch), so
    the walk of ``check_json_limits`` can be skipped; False sends the body to the walk.

    In a text of at most ``_SHORT_TEXT`` bytes no string is longer than MAX_JSON_STRING and no
    container has MAX_JSON_ITEMS members; nesting is at most the count of ``[`` and ``{``; a NUL
    or a lone surrogate can only come from a ``\\u`` escape (a raw NUL is refused by the parser,
    a raw surrogate by the UTF-8 decoder); and a float that overflows or an integer beyond
    MAX_JSON_INT needs a 3-digit exponent or 16 digits. (Only for floats parsed as ``float``:
    the ``Decimal`` limit is an exponent of 30.) All of this reads the bytes as UTF-8, so a body
    holding a NUL byte (UTF-16 or UTF-32, which the parser also takes) goes to the walk.
    """
    return (len(raw) <= _SHORT_TEXT and b"\x00" not in raw and b"\\u" not in raw
            and raw.count(b"[") + raw.count(b"{") <= MAX_JSON_DEPTH
            and _BIG_NUMBER.search(raw) is None)


def check_json_limits(data: Any) -> None:
    """Walk a parsed JSON value (iteratively) and raise Malformed at the first limit broken."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            _check_string(value)
        elif isinstance(value, bool) or value is None:
            continue
        elif isinstance(value, int):
            if abs(value) > MAX_JSON_INT:
                raise Malformed("an integer in the body is out of range")
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise Malformed("a number in the body is out of range")
        elif isinstance(value, Decimal):
            if not value.is_finite() or abs(value.adjusted()) > 30:
                raise Malformed("a number in the body is out of range")
        elif isinstance(value, (dict, list)):
            if depth > MAX_JSON_DEPTH:
                raise Malformed(f"the body is nested deeper than {MAX_JSON_DEPTH} levels")
            if len(value) > MAX_JSON_ITEMS:
                raise Malformed(f"an object or array in the body has more than {MAX_JSON_ITEMS} members")
            if isinstance(value, dict):
                for key, member in value.items():
                    _check_string(key)
                    stack.append((member, depth + 1))
            else:
                stack.extend((member, depth + 1) for member in value)


def _check_string(value: str) -> None:
    if len(value) > MAX_JSON_STRING:
        raise Malformed(f"a string in the body is longer than {MAX_JSON_STRING} characters")
    if "\x00" in value:
        raise Malformed("a string in the body holds a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise Malformed("a string in the body holds an unpaired surrogate") from None


def read_json(request: Request, *, allow_text_plain: bool = False) -> Any:
    """Parse the body as JSON within the limits of ``decode_json``; raises Malformed.

    ``text/plain`` is accepted for beacons.
    """
    mimetype = request.mimetype or ""
    if mimetype != "application/json" and not (allow_text_plain and mimetype in ("text/plain", "")):
        raise Malformed("the body must be JSON (Content-Type: application/json)", code="unsupported_media_type")
    return decode_json(request.get_data(cache=True))


def parse(model: type[M], data: Any) -> M:
    """Validate ``data`` against ``model``; raises Malformed (not an object) or Invalid (a field)."""
    if not isinstance(data, dict):
        raise Malformed("the body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "body"
        raise Invalid(f"{where}: {first.get('msg', 'invalid')}", code="invalid_field") from None
