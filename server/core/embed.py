"""What a shop puts on its own site: the script tag and the one-line service-worker file."""
from __future__ import annotations

import json


def script_tag(public_url: str, public_key: str) -> str:
    """The tag a shop pastes into its theme (CONTRACT §4)."""
    return f'<script src="{public_url}/widget.js" data-shop="{public_key}" async></script>'


def worker_source(public_url: str) -> str:
    """The one line the shop's service-worker file holds (its URL JSON-quoted)."""
    return f"importScripts({json.dumps(public_url + '/sw.js')});"
