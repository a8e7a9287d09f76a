"""Small pure pieces of the dashboard and stats: delay text, money, ratios, utm merging, date ranges."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from werkzeug.datastructures import MultiDict

from server.merchant.content_forms import delay_rows, delays_from_form
from server.merchant.pages.shop import parse_delays
from server.core.errors import ApiError, Invalid
from server.clicks.service import is_http_url, with_utm
from server.reports.stats import money, parse_range, ratio


def test_delays_read_and_write_in_human_units():
    assert parse_delays("30m, 6h, 2d") == [1800, 21600, 172800]
    assert parse_delays("0") == [0] and parse_delays(" 45s ") == [45]
    for bad in ("soon", "1w", "-1h", "1h;2h", "", "1234567h"):
        with pytest.raises(ApiError):
            parse_delays(bad)


def test_delays_come_from_a_number_and_a_unit_per_step():
    form = MultiDict({"delay_value_0": "30", "delay_unit_0": "minutes", "delay_value_1": "6", "delay_unit_1": "hours",
                      "delay_value_2": " 2 ", "delay_unit_2": "days", "delay_value_3": "", "delay_unit_3": "hours"})
    assert delays_from_form(form) == [1800, 21600, 172800]
    assert delays_from_form(MultiDict({"delay_value_0": "0", "delay_unit_0": "minutes"})) == [0]
    assert delays_from_form(MultiDict({"delays": "1h"})) is None, "no number fields: the text form is read instead"
    for bad in ({"delay_value_0": "soon", "delay_unit_0": "hours"}, {"delay_value_0": "-1", "delay_unit_0": "hours"},
                {"delay_value_0": "1", "delay_unit_0": "weeks"}, {"delay_value_0": "", "delay_unit_0": "hours"},
                {"delay_value_0": "1234567", "delay_unit_0": "days"}):
        with pytest.raises(ApiError):
            delays_from_form(MultiDict(bad))


def test_delay_rows_show_each_delay_in_its_largest_whole_unit():
    assert delay_rows([0, 1800, 5400, 21600, 172800]) == [(0, "minutes"), (30, "minutes"), (90, "minutes"),
                                                            (6, "hours"), (2, "days")]
    assert delay_rows([45]) == [(45, "seconds")], "a delay set through the API in seconds stays exact"


def test_money_is_exact_and_ratio_stays_between_0_and_1():
    assert money(None) == "0.00" and money("0.1") == "0.10" and money(12345678901.5) == "12345678901.50"
    assert ratio(0, 0) == 0.0 and ratio(3, 5) == 0.6 and ratio(2, 3) == 0.6667 and ratio(7, 5) == 1.0


def test_utm_parameters_replace_old_ones_and_keep_the_rest():
    assert with_utm("https://s.example/p?a=1&utm_source=x&utm_campaign=y#f", "shipped") == \
        "https://s.example/p?a=1&utm_source=pushcart&utm_medium=web_push&utm_campaign=shipped#f"
    assert with_utm("https://s.example", "welcome").startswith("https://s.example/?utm_source=pushcart")


@pytest.mark.parametrize("url, ok", [
    ("https://s.example/a", True), ("http://s.example", True), ("javascript:alert(1)", False),
    ("//evil.example", False), ("https://user@s.example/", False), ("data:text/html,x", False),
    ("https://s.example/\r\nSet-Cookie: x", False), ("", False), (None, False), ("https:///path", False),
])
def test_only_absolute_http_urls_count_as_links(url, ok):
    assert is_http_url(url) is ok


def test_date_ranges_are_checked():
    now = datetime(2026, 3, 31, 23, 59, tzinfo=timezone.utc)
    default = parse_range(None, None, now)
    assert (default.first.isoformat(), default.last.isoformat()) == ("2026-03-02", "2026-03-31")
    one_day = parse_range("2026-03-01", "2026-03-01", now)
    assert (one_day.start.isoformat(), one_day.end.isoformat()) == ("2026-03-01T00:00:00+00:00", "2026-03-02T00:00:00+00:00")
    for bad in (("2026-02-30", None), ("2026-03-02", "2026-03-01"), ("2024-01-01", "2026-01-01")):
        with pytest.raises(Invalid):
            parse_range(bad[0], bad[1], now)


# Any day, with the calendar's first and last months drawn often (where the arithmetic overflows).
_day_text = (st.dates() | st.dates(max_value=date(1, 2, 28)) | st.dates(min_value=date(9999, 11, 1))).map(date.isoformat)
_range_input = st.none() | _day_text | st.text(max_size=12)


@settings(max_examples=300, deadline=None)
@given(raw_from=_range_input, raw_to=_range_input,
       now=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(timezone.utc)))
def test_any_range_input_is_a_usable_range_or_invalid(raw_from, raw_to, now):
    # Any day of the calendar, its ends included, or any text: a range every report can use
    # (its bounds, its days and an attribution window of up to 90 days past its end), or Invalid.
    try:
        rng = parse_range(raw_from, raw_to, now)
    except Invalid as exc:
        assert exc.message and exc.code == "invalid_field"
        return
    assert rng.start < rng.end and rng.end + timedelta(days=90) > rng.end
    assert len(rng.days()) == (rng.last - rng.first).days + 1 <= 366


@pytest.mark.parametrize(("raw_from", "raw_to"), [("9999-12-31", "9999-12-31"), (None, "9999-12-31"),
                                                  (None, "0001-01-01"), ("0001-01-01", "0001-01-01"),
                                                  ("9999-12-01", "9999-12-31")])
def test_the_ends_of_the_calendar_are_invalid_not_an_overflow(raw_from, raw_to):
    with pytest.raises(Invalid, match="between"):
        parse_range(raw_from, raw_to, datetime(2026, 3, 31, 12, tzinfo=timezone.utc))
