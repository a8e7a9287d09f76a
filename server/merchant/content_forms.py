"""The dashboard's form fields for push content: action buttons, per-locale texts, prompt locales.

Each helper turns the posted fields into the API's shape, so the dashboard saves through the
same checks as the merchant API. Rows with an empty locale code (or an empty button) are left out.
"""
from __future__ import annotations

from typing import Any

from werkzeug.datastructures import MultiDict

MAX_LOCALE_ROWS = 20


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
