"""What a push says to one subscriber: the locale's texts, the action buttons, ``{{ coupon }}``.

The planners render a kind's templates once per plan (``rendering.render``); a plan's rows are then
rendered again per subscription only when that can change them (``personalize``): the kind has
per-locale texts, or one of its templates uses ``coupon``. Other planners (campaigns, alerts)
get the same by rendering through ``rendering.render`` and planning through ``recipients.plan_rows``.

Locale choice (``pick_locale``): the subscriber's locale (``subscriptions.locale``, else
``visitors.locale``, as the browser gave it, e.g. ``de-DE``) is matched case-insensitively
against the kind's locales: the exact tag first (``fr-CA``), then its bare language (``fr``),
else the default texts. A region never gets another region's wording (``fr-BE`` does not get
``fr-CA``): only the bare language stands for all its regions.
"""
from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from typing import Any

from jinja2 import TemplateError, meta

from server.planning import templates

LOCALE_TAG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})?$")
MAX_LOCALES = 20
MAX_ACTIONS = 2
MAX_ACTION_TITLE = 40  # characters; notification UIs cut button labels short anyway


def normalize_locale(tag: str) -> str:
    """``de``, ``fr-CA``: the language in lower case, a two-letter region in upper case."""
    language, _, region = tag.strip().replace("_", "-").partition("-")
    language = language.lower()
    if not region:
        return language
    return f"{language}-{region.upper() if len(region) == 2 else region.lower()}"


def pick_locale(available: Iterable[str], wanted: str | None) -> str | None:
    """The best of ``available`` for the subscriber's locale ``wanted``: exact, then language; or None."""
    if not wanted or not isinstance(wanted, str):
        return None
    by_lower = {tag.lower(): tag for tag in available}
    if not by_lower:
        return None
    wanted = wanted.strip().replace("_", "-").lower()
    if wanted in by_lower:
        return by_lower[wanted]
    language = wanted.partition("-")[0]
    return by_lower.get(language)


def localized(locales: Mapping[str, Mapping[str, str]] | None, wanted: str | None) -> dict[str, str]:
    """The texts of the locale chosen for ``wanted`` (``{}`` for the default texts)."""
    if not locales:
        return {}
    chosen = pick_locale(locales.keys(), wanted)
    return dict(locales[chosen]) if chosen is not None else {}


@functools.lru_cache(maxsize=512)
def _variables(source: str) -> frozenset[str]:
    try:
        return frozenset(meta.find_undeclared_variables(templates._env().parse(source)))
    except TemplateError:
        return frozenset()


def uses_variable(name: str, sources: Iterable[str]) -> bool:
    """Whether any of the templates ``sources`` reads the variable ``name``."""
    return any(source and name in source and name in _variables(source) for source in sources)


def setting_sources(setting: Any) -> list[str]:
    """Every template of a preset setting: texts, links, step texts, locale texts, action buttons."""
    # getattr: other planners may pass setting objects of their own without every field.
    sources = [getattr(setting, name, "") for name in ("title", "body", "url", "icon", "image")]
    for step in getattr(setting, "steps", None) or []:
        sources += [step.get("title", ""), step.get("body", "")]
    for texts in (getattr(setting, "locales", None) or {}).values():
        sources += list(texts.values())
    for action in getattr(setting, "actions", None) or []:
        sources += [action.get("title", ""), action.get("url", "")]
    return [s for s in sources if isinstance(s, str)]


def uses_coupon(setting: Any) -> bool:
    """Whether the setting's templates use ``{{ coupon }}`` (then each push takes its own code)."""
    return uses_variable("coupon", setting_sources(setting))
