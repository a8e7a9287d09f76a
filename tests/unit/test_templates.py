"""Push templates are bounded: no template can take the process's memory or time.

Each hostile template must be refused quickly at save time (``validate``) and fall back,
with a warning naming the shop and kind, at plan time. The ``quick`` fixture turns a hang
into a failure (SIGALRM) so a regression fails instead of stalling the run.
"""
from __future__ import annotations

import logging
import signal

import pytest

from server.core.errors import Invalid
from server.planning import rendering, templates
from server.planning.defaults import DEFAULTS


# Per kind, the variables its planner always fills (the rest may be empty and need a fallback).
ALWAYS_SET = {
    "welcome": {"shop_name", "shop_url"},
    "browse_abandonment": {"shop_name", "shop_url", "product_image"},
    "checkout_recovery": {"shop_name", "shop_url", "item_count", "cart_total", "checkout_url"},
    "repurchase": {"shop_name", "shop_url", "order_id"},
    "shipped": {"shop_name", "shop_url", "order_id", "tracking_url"},
    "back_in_stock": {"shop_name", "shop_url", "product_title", "product_price", "product_image", "product_url"},
    "price_drop": {"shop_name", "shop_url", "product_title", "product_price", "product_image", "product_url"},
}


class TookTooLong(Exception):
    pass


@pytest.fixture
def quick():
    def alarm(signum, frame):
        raise TookTooLong("the template ran for more than 5 s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(5)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


HOSTILE = [
    "{{ 'x' * 10**9 }}",
    "{{ 10**9 * 'x' }}",
    "{{ [1] * 10**9 }}",
    "{{ range(10**9)|list }}",
    "{{ range(1000)|list }}",
    "{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}",
    "{% for a in range(100) %}{% for b in range(100) %}{% endfor %}{% endfor %}",
    "{% for a in range(50) %}{% for b in range(50) %}{% for c in range(50) %}{% endfor %}{% endfor %}{% endfor %}",
    "{{ '%999999999s' % 1 }}",
    "{{ '%*s' % (999999999, 1) }}",
    "{{ '%.999999999f' % 1.5 }}",
    "{{ '{:>999999999}'.format(1) }}",
    "{{ '{:>{}}'.format(1, 999999999) }}",
    "{{ '%s'|format('x') * 10**9 }}",
    "{{ '%999999999s'|format(1) }}",
    "{{ 'x'.center(999999999) }}",
    "{{ 'x'.ljust(999999999) }}",
    "{{ 'x'|center(999999999) }}",
    "{{ 'x'|indent(999999999, true) }}",
    "{{ 10 ** (10 ** 10) }}",
    "{{ 2.0 ** 100000 }}",
    "{{ 7 ** 99999 }}",
    "{{ (10 ** 1000) * (10 ** 1000) * (10 ** 1000) * (10 ** 1000) * (10 ** 1000) }}",
    "{{ 1 / 0 }}",
    "{{ 1 // 0 }}",
    "{{ 'a' - 1 }}",
    "{{ '{1}'.format(0) }}",
    "{{ 'x' * 5000 }}",
    "{{ 'x' * 3000 }}{{ 'x' * 3000 }}",
    "{% set a = 'x' * 4000 %}{% set a = a ~ a %}{% set a = a ~ a %}{% set a = a ~ a %}{{ a|length }}",
    "{% set a = 'x' * 4000 %}{% set a = a + a %}{% set a = a + a %}{{ a|length }}",
    "{% set a = 'x' * 4000 %}{% set a %}{{ a }}{{ a }}{% endset %}{% set a %}{{ a }}{{ a }}{% endset %}{{ a|length }}",
    "{% set a = 'x' * 4000 %}{{ a|replace('', a)|length }}",
    "{% set a = 'x' * 4000 %}{{ a.replace('x', a)|length }}",
    "{% set a = 'x' * 4000 %}{{ (a|list)|join(a)|length }}",
    "{% set a = 'x' * 4000 %}{{ a.join(a)|length }}",
    "{% set a = '\"' * 3000 %}{{ a|tojson|tojson|tojson|length }}",
    "{% macro d(x) %}{{ x }}{{ x }}{% endmacro %}{{ d(d(d(d(d(d(d(d(d(d(d(d('x' * 4000))))))))))))|length }}",
    "{% macro f() %}{{ f() }}{{ f() }}{% endmacro %}{{ f() }}",
    "{% macro f(n) %}{% for i in range(10) %}{{ f(n) }}{% endfor %}{% endmacro %}{{ f(1) }}",
    "{% set ns = namespace(s='x' * 4000) %}{% for i in range(30) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}",
    "{% set l = ['x'] %}{% for i in range(40) %}{{ l.extend(l) }}{% endfor %}{{ l|length }}",
]


@pytest.mark.parametrize("source", HOSTILE)
def test_hostile_templates_are_refused_at_save_time_naming_the_field(quick, source):
    with pytest.raises(Invalid) as caught:
        templates.validate("body", source)
    assert caught.value.code == "invalid_template"
    assert caught.value.message.startswith("body: ")


@pytest.mark.parametrize("source", HOSTILE)
def test_hostile_templates_fall_back_at_plan_time_with_a_warning(quick, caplog, source):
    setting = type("Setting", (), {"kind": "shipped", "shop_id": 42, "title": "Order {{ order_id }}",
                                   "body": source, "url": "", "icon": "", "image": source})()
    with caplog.at_level(logging.WARNING, logger="server.planning.rendering"):
        rendered = rendering.render(setting, {**templates.SAMPLE_CONTEXT}, fallback_url="https://shop.example/")
    assert rendered.title == "Order 1001"
    assert rendered.body == "" and rendered.image is None and rendered.url == "https://shop.example/"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings, "a template failing at plan time is logged"
    for record in warnings:
        text = record.getMessage()
        assert "shop 42" in text and "shipped" in text
        assert source not in text, "the template text is never logged"


LEGITIMATE = [
    ("{{ product_title|upper }} for {{ product_price }}", "LINEN SHIRT for $49.00"),
    ("{% for i in range(3) %}{{ i }}{% endfor %}", "012"),
    ("{% for p in items %}{{ loop.index }}/{{ loop.length }} {{ p.title }}{% if not loop.last %}, {% endif %}{% endfor %}",
     "1/2 Mug, 2/2 Shirt"),
    ("{% for p in items if p.title != 'Mug' %}{{ p.title }}{% else %}none{% endfor %}", "Shirt"),
    ("{{ '%.1f' % 2.25 }} {{ '{:>5}'.format('a') }}|{{ '%s and %s'|format('a', 'b') }}", "2.2 a|a and b"),
    ("{{ 2 ** 10 }} {{ 7 * 6 }} {{ 'ab' * 3 }} {{ 'a' + 'b' }} {{ 10 // 3 }} {{ 10 % 3 }}", "1024 42 ababab ab 3 1"),
    ("{% macro hi(n) %}Hi {{ n }}{% endmacro %}{{ hi(first_name) }}", "Hi Alex"),
    ("{% set ns = namespace(n=0) %}{% for p in items %}{% set ns.n = ns.n + 1 %}{% endfor %}{{ ns.n }}", "2"),
    ("{{ 'x' * 4000 }}", "x" * 4000),
    ("{{ missing_variable }}{{ shop_name|truncate(7, true, '', 0) }}", "Demo Sh"),
    ("{{ [1, 2, 3]|join(', ') }} {{ 'a b'|replace(' ', '-') }} {{ product_title|center(15)|trim }}",
     "1, 2, 3 a-b Linen Shirt"),
]


@pytest.mark.parametrize("source, expected", LEGITIMATE)
def test_legitimate_templates_still_render(quick, source, expected):
    context = {**templates.SAMPLE_CONTEXT, "items": [{"title": "Mug"}, {"title": "Shirt"}]}
    assert templates.render(source, context) == expected
    templates.validate("body", source)


@pytest.mark.parametrize("kind", sorted(DEFAULTS))
def test_every_default_template_validates(quick, kind):
    for field in ("title", "body", "url", "icon", "image"):
        templates.validate(field, DEFAULTS[kind].get(field, ""))


@pytest.mark.parametrize("kind", sorted(DEFAULTS))
def test_default_texts_read_as_plain_text_with_fallbacks(kind):
    for field in ("title", "body", "url", "icon", "image"):
        assert "{%" not in DEFAULTS[kind].get(field, ""), f"{kind} {field}: no conditions for a merchant to read"
    for field in ("title", "body"):  # an empty link falls back on its own
        assert templates.unguarded_variables(DEFAULTS[kind].get(field, "")) <= ALWAYS_SET[kind], \
            f"{kind} {field}: a variable that may be empty needs a fallback"


def test_the_browse_reminder_reads_well_for_a_product_a_cart_and_a_cart_without_product():
    browse = DEFAULTS["browse_abandonment"]
    product = {"shop_name": "Acme", "product_title": "Linen Shirt", "product_url": "https://s.example/p"}
    cart = {"shop_name": "Acme", "cart_total": "$98.00", "item_count": 2, "cart_url": "https://s.example/c",
            "product_url": ""}
    assert templates.render(browse["title"], product) == "Linen Shirt is waiting for you"
    assert templates.render(browse["title"], {**cart, "product_title": "Blue Mug"}) == "Blue Mug is waiting for you"
    assert templates.render(browse["title"], {**cart, "product_title": ""}) == "Your cart is waiting for you"
    assert templates.render(browse["url"], product) == "https://s.example/p"
    assert templates.render(browse["url"], cart) == "https://s.example/c"


def test_the_output_limit_stops_rendering_early(quick):
    # 100 x 100 characters... is 10,000 bytes: past the output limit long before the loop ends.
    with pytest.raises(templates.TemplateLimitError):
        templates.render("{% for i in range(100) %}{{ 'y' * 100 }}{% endfor %}", {})
    assert len(templates.render("{% for i in range(40) %}{{ 'y' * 100 }}{% endfor %}", {})) == 4000


def test_the_work_budget_counts_loop_iterations_across_the_render(quick):
    ten_by_ten = "{% for a in range(10) %}{% for b in range(10) %}{% endfor %}{% endfor %}"
    templates.render(ten_by_ten, {})  # 110 steps: fine
    with pytest.raises(templates.TemplateLimitError):
        templates.render(ten_by_ten * 10, {})  # 1,100 steps in one render
    templates.render(ten_by_ten, {}), "each render starts with a fresh budget"


# Merge tags with fallbacks: ``{{ first_name | default("there") }}``.

@pytest.mark.parametrize("value, expected", [
    ("Jonas", "Hi Jonas"), ("", "Hi there"), ("   ", "Hi there"), (None, "Hi there"), (0, "Hi 0"),
])
def test_a_fallback_stands_in_for_a_missing_or_empty_value(value, expected):
    assert templates.render('Hi {{ first_name | default("there") }}', {"first_name": value}) == expected
    assert templates.render('Hi {{ first_name | d("there") }}', {"first_name": value}) == expected


def test_a_fallback_stands_in_for_an_unknown_variable():
    assert templates.render('Hi {{ nickname | default("there") }}', {}) == "Hi there"


@pytest.mark.parametrize("source, unguarded", [
    ("Hi {{ first_name }}", {"first_name"}),
    ('Hi {{ first_name | default("there") }}', set()),
    ("Hi {{ first_name | upper }}", {"first_name"}),
    ('Hi {{ first_name | upper | default("there") }}', set()),
    ("{% if first_name %}Hi {{ first_name }}{% endif %}", set()),
    ("{% if first_name %}Hi {{ first_name }}{% else %}Hi {{ product_title }}{% endif %}", {"product_title"}),
    ("{{ first_name if first_name else 'Hi' }}", set()),
    ("{{ product_title }} for {{ cart_total }}", {"product_title", "cart_total"}),
    ("{% set x = 1 %}{{ x }}", set()),
    ("{% for i in range(2) %}{{ i }}{% endfor %}", set()),
    ("{{ not valid", set()),
])
def test_unguarded_variables_are_those_printed_without_a_fallback_or_a_condition(source, unguarded):
    assert templates.unguarded_variables(source) == unguarded
