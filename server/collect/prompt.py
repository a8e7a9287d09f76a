"""The soft-ask in the visitor's language: ``GET /v1/shops/{key}/config?locale=de-DE``.

The shop's prompt may carry ``locales: {"de": {"text", "yes", "no"}}``. For the visitor's
locale (``navigator.language``) the best of them is chosen as for push texts (exact tag, then
the bare language): its non-empty fields replace the default ``text``, and the buttons' labels
``yes``/``no`` come from it, else from the built-in labels of the language (en, de, fr, es, it,
nl), else they are left out (the widget shows its own English labels).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from server.planning.content import pick_locale

# Built-in button labels for the languages most shops sell in, short enough for the widget's
# two buttons side by side.
BUTTONS: dict[str, dict[str, str]] = {
    "en": {"yes": "Yes, notify me", "no": "Not now"},
    "de": {"yes": "Ja, gerne", "no": "Jetzt nicht"},
    "fr": {"yes": "Oui, volontiers", "no": "Plus tard"},
    "es": {"yes": "Sí, avísame", "no": "Ahora no"},
    "it": {"yes": "Sì, avvisami", "no": "Non ora"},
    "nl": {"yes": "Ja, graag", "no": "Niet nu"},
}


def localized_prompt(prompt: Mapping[str, Any], locale: str | None) -> dict[str, Any]:
    """The widget's ``prompt`` for a visitor in ``locale`` (without the stored ``locales``)."""
    result = {k: v for k, v in prompt.items() if k != "locales"}
    if not locale:
        return result
    locales = prompt.get("locales") or {}
    chosen = pick_locale(locales.keys(), locale)
    own = locales.get(chosen, {}) if chosen is not None else {}
    builtin = BUTTONS.get(locale.strip().replace("_", "-").partition("-")[0].lower(), {})
    for name in ("yes", "no"):
        label = own.get(name) or builtin.get(name)
        if label:
            result[name] = label
    if own.get("text"):
        result["text"] = own["text"]
    return result
