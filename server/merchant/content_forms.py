"""The dashboard's form fields for push content: delays, action buttons, per-locale texts, prompt locales.

Each helper turns the posted fields into the API's shape, so the dashboard saves through the
same checks as the merchant API. Rows with an empty locale code (or an empty button) are left out.
"""
from __future__ import annotations

from typing import Any

from werkzeug.datastructures import MultiDict

from server.core.errors import Invalid

MAX_LOCALE_ROWS = 20
MAX_DELAY_ROWS = 5
# The units a delay is chosen in, largest first; "seconds" only shows a delay set through the API.
DELAY_UNITS = {"days": 86400, "hours": 3600, "minutes": 60, "seconds": 1}
FORM_UNITS = ("minutes", "hours", "days")


def delays_from_form(form: MultiDict[str, str]) -> list[int] | None:
    """``delay_value_{i}`` with ``delay_unit_{i}`` (i from 0; a row without a number is left out)
    as seconds; None when the form has no such fields. Raises Invalid on a bad number or unit."""
    if not any(key.startswith("delay_value_") for key in form):
        return None
    delays = []
    for i in range(MAX_DELAY_ROWS):
        raw = form.get(f"delay_value_{i}", "").strip()
        if not raw:
            continue
        unit = form.get(f"delay_unit_{i}", "")
        if not (raw.isascii() and raw.isdigit()) or len(raw) > 6 or unit not in DELAY_UNITS:
            raise Invalid(f"delay {i + 1}: a whole number of minutes, hours or days", code="invalid_field")
        delays.append(int(raw) * DELAY_UNITS[unit])
    if not delays:
        raise Invalid("delays: give at least one (0 sends at once)", code="invalid_field")
    return delays


def delay_rows(delays: list[int]) -> list[tuple[int, str]]:
    """Each delay as (number, unit) in its largest whole unit: 5400 s is (90, "minutes")."""
    rows = []
    for seconds in delays:
        unit = next((u for u, size in DELAY_UNITS.items() if seconds % size == 0), "seconds") if seconds else "minutes"
        rows.append((seconds // DELAY_UNITS[unit], unit))
    return rows


def actions_from_form(form: MultiDict[str, str]) -> list[dict[str, str]]:
    """``action_title_{i}`` / ``action_url_{i}`` (i = 1, 2) as the preset API's ``actions``."""
    actions = []
    for i in (1, 2):
        title, url = form.get(f"action_title_{i}", "").strip(), form.get(f"action_url_{i}", "").strip()
        if title or url:
            actions.append({"title": title, "url": url})
    return actions


def locales_from_form(form: MultiDict[str, str]) -> dict[str, dict[str, str]]:
    """``locale_code_{i}`` with its ``locale_title_{i}``, ``locale_body_{i}``, ``locale_url_{i}``."""
    locales: dict[str, dict[str, str]] = {}
    for i in range(MAX_LOCALE_ROWS):
        code = form.get(f"locale_code_{i}", "").strip()
        if code:
            locales[code] = {"title": form.get(f"locale_title_{i}", ""), "body": form.get(f"locale_body_{i}", ""),
                             "url": form.get(f"locale_url_{i}", "")}
    return locales


def prompt_locales_from_form(form: MultiDict[str, str]) -> dict[str, dict[str, Any]]:
    """``prompt_locale_{i}`` with its ``prompt_locale_text_{i}``, ``_yes_{i}``, ``_no_{i}``."""
    locales: dict[str, dict[str, Any]] = {}
    for i in range(MAX_LOCALE_ROWS):
        code = form.get(f"prompt_locale_{i}", "").strip()
        if code:
            locales[code] = {"text": form.get(f"prompt_locale_text_{i}", ""),
                             "yes": form.get(f"prompt_locale_yes_{i}", ""),
                             "no": form.get(f"prompt_locale_no_{i}", "")}
    return locales


def locale_rows(locales: dict[str, dict[str, str]], empty: int = 2) -> list[tuple[str, dict[str, str]]]:
    """The saved locales as form rows, plus ``empty`` blank rows to add more (at most 20 rows)."""
    rows = list(locales.items()) + [("", {})] * empty
    return rows[:MAX_LOCALE_ROWS]
