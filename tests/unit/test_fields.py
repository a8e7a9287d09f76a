"""The shared field rules (``server/core/fields.py``): each pinned by examples, and the plain and
typed forms agreeing on every input (hypothesis)."""
from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st
from pydantic import TypeAdapter, ValidationError

from server.core import fields

PAIRS = [
    (fields.http_url, fields.Url),
    (fields.money, fields.Money),
    (fields.currency, fields.Currency),
    (fields.ref, fields.Ref),
    (fields.email, fields.Email),
    (fields.locale, fields.Locale),
    (fields.zone, fields.Zone),
]

ANYTHING = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True), st.text(max_size=80),
    st.from_regex(r"\A(https?|ftp|javascript):/{0,2}[a-z0-9.@:\[\]\\ -]{0,30}(/[a-z0-9?=&%#]{0,20})?\Z"),
    st.from_regex(r"\A-?[0-9]{1,14}(\.[0-9]{0,4})?\Z"),
    st.from_regex(r"\A[a-zA-Z]{2,4}(-[A-Za-z0-9]{1,9}){0,5}\Z"),
    st.from_regex(r"\A[a-z.+]{0,10}@[a-z.]{0,10}\Z"),
    st.sampled_from(["Europe/Berlin", "America/New_York", "UTC", "Mars/Olympus", "../etc/passwd"]),
    st.lists(st.integers(), max_size=2),
)


@pytest.mark.parametrize(("rule", "typed"), PAIRS, ids=lambda x: getattr(x, "__name__", ""))
@settings(max_examples=300, deadline=None)
@given(value=ANYTHING)
def test_the_plain_and_typed_forms_agree(rule, typed, value: Any):
    clean = rule(value)
    adapter = TypeAdapter(typed)
    if clean is None:
        with pytest.raises(ValidationError):
            adapter.validate_python(value)
    else:
        assert adapter.validate_python(value) == clean
        assert rule(clean) == clean  # a clean value is its own clean form


@pytest.mark.parametrize("url", [
    "https://shop.example/p/1", "http://shop.example:8080/a?b=c#d", " https://shop.example/ ", "HTTPS://Shop.Example/x",
])
def test_urls_accepted(url):
    assert fields.http_url(url) == url.strip()


@pytest.mark.parametrize("url", [
    "", "ftp://files.test/x", "javascript:alert(1)", "data:text/html,x", "https://user:pw@shop.example/",
    "https://user@shop.example/", "https:///nohost", "https://shop.example/a b", "https://shop.example/\\evil",
    "https://shop.example/\nx", "https://shop.example:99999/", "https://[::1/", "//shop.example/x",
    "https://shop.example/" + "a" * fields.MAX_URL, None, 5, ["https://shop.example/"],
])
def test_urls_refused(url):
    assert fields.http_url(url) is None


@pytest.mark.parametrize(("raw", "amount"), [
    ("199.00", Decimal("199.00")), (3, Decimal("3.00")), (12.5, Decimal("12.50")), ("0", Decimal("0.00")),
    (Decimal("19.99"), Decimal("19.99")), ("999999999999.99", Decimal("999999999999.99")),
])
def test_money_accepted(raw, amount):
    assert fields.money(raw) == amount


@pytest.mark.parametrize("raw", ["-5.00", "12.345", "1e12", "NaN", "Infinity", "", "ten", True, None, [1], 0.1 + 0.2])
def test_money_refused(raw):
    assert fields.money(raw) is None


def test_a_computed_platform_price_is_rounded_to_the_cent():
    assert fields.rounded_money(33.333333) == Decimal("33.33")
    assert fields.rounded_money("0.005") == Decimal("0.01")
    assert fields.rounded_money("-1") is None and fields.rounded_money("x") is None


def test_currency_ref_email_locale_zone():
    assert fields.currency("usd") == "USD" and fields.currency("EUR ") == "EUR"
    assert fields.currency("EURO") is None and fields.currency("E1R") is None
    assert fields.ref(12345) == "12345" and fields.ref(" a-1 ") == "a-1"
    assert fields.ref(True) is None and fields.ref("") is None and fields.ref("x" * 129) is None
    assert fields.ref("a\x00b") is None
    assert fields.email(" Ann@Example.COM ") == "ann@example.com"
    assert fields.email("ann@example") is None and fields.email("a b@example.com") is None
    assert fields.email("a@b@example.com") is None
    assert fields.locale("pt-BR") == "pt-BR" and fields.locale("zh-Hant-TW") == "zh-Hant-TW"
    assert fields.locale("e") is None and fields.locale("en_US") is None
    assert fields.zone("Europe/Berlin") == "Europe/Berlin"
    assert fields.zone("Mars/Olympus") is None and fields.zone("../etc/passwd") is None
