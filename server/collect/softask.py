"""The soft-ask's markup and style, rendered on the server from the shop's design.

The widget only puts ``html`` into its shadow root, adopts ``css`` as a constructed sheet (so a
shop's CSP without 'unsafe-inline' still styles it) and wires the ``.yes`` and ``.no`` buttons;
the dashboard's designer previews the very same two strings. Both come from Jinja templates with
autoescaping; the values that reach the CSS (colour, positions) are validated to a fixed form
before they are stored (``server.merchant.shop_admin.PromptSettings``) and checked again here.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from server.core.shops import DEFAULT_PROMPT

POSITIONS = ("bottom-left", "bottom-right", "top", "center")
POSITION_LABELS = {"bottom-left": "Bottom left", "bottom-right": "Bottom right", "top": "Top", "center": "Centre"}
DEFAULT_COLOR = "#1f6feb"
DEFAULT_YES = "Yes, notify me"
DEFAULT_NO = "Not now"
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
# Pure black, not a softer near-black: with it one of the two always reaches 4.5:1 (WCAG AA).
DARK, LIGHT = "#000000", "#ffffff"


def _luminance(color: str) -> float:
    """WCAG relative luminance of ``#rrggbb``."""
    channels = []
    for i in (1, 3, 5):
        c = int(color[i:i + 2], 16) / 255
        channels.append(c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4)
    return 0.2126 * channels[0] + 0.7152 * channels[1] + 0.0722 * channels[2]


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio of two ``#rrggbb`` colours (1 to 21)."""
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def text_on(color: str) -> str:
    """The readable text colour on ``color``: black or white, whichever contrasts more."""
    return DARK if contrast(color, DARK) >= contrast(color, LIGHT) else LIGHT


def design(prompt: Mapping[str, Any]) -> dict[str, Any]:
    """The fields the templates use, each falling back to its default when absent or malformed."""
    color = prompt.get("color") if isinstance(prompt.get("color"), str) and _COLOR.match(prompt["color"]) else DEFAULT_COLOR
    position = prompt.get("position") if prompt.get("position") in POSITIONS else POSITIONS[0]
    phone = prompt.get("phone") if isinstance(prompt.get("phone"), Mapping) else {}
    text = str(prompt.get("text") or "") or DEFAULT_PROMPT["text"]
    title = str(prompt.get("title") or "")
    return {
        "color": color.lower(), "on_color": text_on(color), "position": position,
        "phone_position": phone.get("position") if phone.get("position") in POSITIONS else position,
        "title": title, "text": text,
        "phone_title": str(phone.get("title") or "") or title, "phone_text": str(phone.get("text") or "") or text,
        "yes": str(prompt.get("yes") or "") or DEFAULT_YES, "no": str(prompt.get("no") or "") or DEFAULT_NO,
        "icon": str(prompt.get("icon") or ""),
    }


@cache
def _templates() -> Environment:
    """The two templates' environment (autoescaped HTML), apart from Flask's so the widget's tests
    and the designer render without an app."""
    folder = Path(__file__).resolve().parents[1] / "templates" / "softask"
    return Environment(loader=FileSystemLoader(folder), autoescape=select_autoescape(["html"]),
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def render(prompt: Mapping[str, Any]) -> dict[str, str]:
    """``{"html", "css"}`` of the soft-ask for ``prompt`` (a stored or localized prompt)."""
    return dict(_render(tuple(sorted(design(prompt).items()))))


@lru_cache(maxsize=1024)
def _render(values: tuple[tuple[str, Any], ...]) -> tuple[tuple[str, str], ...]:
    """The rendering of one design, kept: the widget's config asks for it on every page view,
    and a shop's design changes rarely (a few locales' texts per shop)."""
    html = _templates().get_template("softask.html").render(**dict(values))
    css = _templates().get_template("softask.css").render(**dict(values))
    return (("html", " ".join(html.split())), ("css", " ".join(css.split())))
