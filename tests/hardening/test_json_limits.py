"""The body limits of ``validation.decode_json``, at their exact boundaries."""
from __future__ import annotations

import json
from decimal import Decimal

import pytest

from server.core.errors import Malformed
from server.core.validation import MAX_JSON_DEPTH, MAX_JSON_INT, MAX_JSON_ITEMS, MAX_JSON_STRING, decode_json


def nested(depth: int) -> object:
    value: object = 1
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("ok, refused", [
    (nested(MAX_JSON_DEPTH), nested(MAX_JSON_DEPTH + 1)),
    ({"s": "x" * MAX_JSON_STRING}, {"s": "x" * (MAX_JSON_STRING + 1)}),
    ({"k" * MAX_JSON_STRING: 1}, {"k" * (MAX_JSON_STRING + 1): 1}),
    ({"n": MAX_JSON_INT}, {"n": MAX_JSON_INT + 1}),
    ({"n": -MAX_JSON_INT}, {"n": -MAX_JSON_INT - 1}),
    (list(range(MAX_JSON_ITEMS)), list(range(MAX_JSON_ITEMS + 1))),
    ({"s": "caf\u00e9 \U0001f600"}, {"s": "a\u0000b"}),
    ({"s": "\U0001f600"}, {"s": "\ud83d"}),
])
def test_limits_hold_at_their_boundary(ok, refused):
    assert decode_json(json.dumps(ok)) == ok
    with pytest.raises(Malformed):
        decode_json(json.dumps(refused))


@pytest.mark.parametrize("raw", ["NaN", "[Infinity]", '{"a": -Infinity}', "1e400", "[" * 100_000, b"\xff\xfe{",
                                 '{"a": 1', ""])
def test_invalid_json_is_malformed(raw):
    with pytest.raises(Malformed):
        decode_json(raw)


def test_money_can_be_parsed_exactly():
    assert decode_json('{"total": 0.1}', parse_float=Decimal) == {"total": Decimal("0.1")}
    with pytest.raises(Malformed):
        decode_json('{"total": 1e400}', parse_float=Decimal)


@pytest.mark.parametrize("raw", [
    b"[" * (MAX_JSON_DEPTH + 1) + b"1" + b"]" * (MAX_JSON_DEPTH + 1),
    b'{"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": {"j": {"k": 1}}}}}}}}}}}',
    b'{"n": 9007199254740992}', b'{"n": -90071992547409920}', b'{"n": 1e309}', b'{"n": -2.5E+400}',
    b'{"s": "a\\u0000b"}', b'{"s": "\\ud83d"}', b'{"\\uDFFF": 1}',
])
def test_a_small_body_is_held_to_every_limit_too(raw):
    """Small bodies skip the full walk when their text proves them within the limits; these do not."""
    assert len(raw) < 200
    with pytest.raises(Malformed):
        decode_json(raw)
    for encoding in ("utf-16", "utf-32"):  # the parser takes these too: the same limits hold
        with pytest.raises(Malformed):
            decode_json(raw.decode("utf-8").encode(encoding))


@pytest.mark.parametrize("raw", [
    b'{"visitor_id": "v_12345678", "events": [{"type": "page_view", "url": "https://shop.example/a?b=1"}]}',
    b'{"n": 900719925474099, "f": 1.5e10, "s": "caf\xc3\xa9 [{}]", "e": "\\n\\t"}',
])
def test_a_small_body_within_the_limits_parses_the_same_either_way(raw):
    assert decode_json(raw) == json.loads(raw)
