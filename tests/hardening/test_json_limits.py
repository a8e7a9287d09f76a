"""The body limits of ``validation.decode_json``, at their exact boundaries."""
from __future__ import annotations

import json
from decimal import Decimal

import pytest

from server.errors import Malformed
from server.validation import MAX_JSON_DEPTH, MAX_JSON_INT, MAX_JSON_ITEMS, MAX_JSON_STRING, decode_json


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
