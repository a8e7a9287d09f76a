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

from urllib.parse import quote

from server.core.fields import http_url
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
    """The widget's ``prompt`` for a visitor in ``locale`` (without the stored ``locales``), with
    ``css``: the designer's position, phone position and icon as the widget's style rules.

    Labels: the locale's own, else the shop's (``yes``/``no``), else the built-in ones of the
    language. ``phone_text`` is the default language's: a locale's own text replaces both.
    """
    result = {k: v for k, v in prompt.items() if k not in ("locales", "position", "phone_position", "icon")}
    result["css"] = prompt_css(prompt)
    for name in ("yes", "no", "phone_text"):
        if not result.get(name):
            result.pop(name, None)
    if not locale:
        return result
    locales = prompt.get("locales") or {}
    chosen = pick_locale(locales.keys(), locale)
    own = locales.get(chosen, {}) if chosen is not None else {}
    builtin = BUTTONS.get(locale.strip().replace("_", "-").partition("-")[0].lower(), {})
    for name in ("yes", "no"):
        label = own.get(name) or prompt.get(name) or builtin.get(name)
        if label:
            result[name] = label
    if own.get("text"):
        result["text"] = own["text"]
        result.pop("phone_text", None)
    return result


# Where the box stands: on a desktop, then on a phone (at most 480 px wide, full width).
POSITIONS: dict[str, str] = {
    "bottom-left": ".box{left:16px;bottom:16px}",
    "bottom-right": ".box{right:16px;bottom:16px}",
    "top": ".box{top:16px;left:50%;transform:translateX(-50%)}",
    "center": ".box{top:50%;left:50%;transform:translate(-50%,-50%)}",
}
PHONE_POSITIONS: dict[str, str] = {
    "bottom-left": "bottom:8px;top:auto;transform:none",
    "bottom-right": "bottom:8px;top:auto;transform:none",
    "top": "top:8px;bottom:auto;transform:none",
    "center": "top:50%;bottom:auto;transform:translateY(-50%)",
}
# A URL inside url("..."): http_url already refused spaces, controls and backslashes; quotes,
# parentheses and angle brackets are percent-encoded so nothing can end the string or the rule.
_CSS_URL_SAFE = ":/?#[]@!$&*+,;=%~-._"


def prompt_css(prompt: Mapping[str, Any]) -> str:
    """The widget's style rules for the prompt's position, its phone position and its icon."""
    position = prompt.get("position") if prompt.get("position") in POSITIONS else "bottom-left"
    phone = prompt.get("phone_position") if prompt.get("phone_position") in POSITIONS else position
    css = (POSITIONS[position]
           + f"@media (max-width:480px){{.box{{left:8px;right:8px;max-width:none;{PHONE_POSITIONS[phone]}}}}}")
    icon = http_url(prompt.get("icon"))
    if icon:
        css += f'.bell{{fill:none;background:url("{quote(icon, safe=_CSS_URL_SAFE)}") center/contain no-repeat}}'
    return css
