"""On the storefront in a real headless Chromium: the soft-ask in the browser's language (its
buttons from the config's ``?locale=``), and the service worker showing a push's two action
buttons with each one's own click link."""
from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from server.core.models import Shop
from server.core.tokens import make_click_token
from server.delivery.payload import action_links, build_payload
from tests.browser.chromium import start_chromium, wait_for
from tests.browser.test_storefront import (grant_notifications, soft_ask, status, storefront, widget_ready,  # noqa: F401
                                           worker)

pytestmark = pytest.mark.browser


@pytest.fixture
def german_browser(tmp_path) -> Iterator[Any]:
    """A headless Chromium whose language is German (navigator.language ``de-DE``)."""
    driver = start_chromium(tmp_path / "profile-de", language="de-DE")
    yield driver
    driver.quit()


def test_the_soft_ask_speaks_the_browsers_language(storefront, german_browser, session, tmp_path):
    from selenium.webdriver.common.by import By

    shop, driver = storefront, german_browser
    row = session.scalars(sa.select(Shop).where(Shop.public_key == shop.public_key)).one()
    row.prompt = {**row.prompt, "after_pageviews": 0, "after_seconds": 0,
                  "locales": {"de": {"text": "Sollen wir Bescheid sagen, wenn der Warenkorb wartet?", "no": "Nein danke"}}}
    session.commit()
    driver.get(shop.base + "/demo/")
    widget_ready(driver)
    language = driver.execute_script("return navigator.language")
    assert language.lower().startswith("de"), language
    prompt = wait_for(lambda: soft_ask(driver), message="the soft-ask")
    assert prompt.find_element(By.CSS_SELECTOR, "p").text == "Sollen wir Bescheid sagen, wenn der Warenkorb wartet?"
    assert prompt.find_element(By.CSS_SELECTOR, "button.yes").text == "Ja, gerne"  # built in
    assert prompt.find_element(By.CSS_SELECTOR, "button.no").text == "Nein danke"  # the shop's own
    folder = Path(os.environ.get("PUSHCART_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(folder / "soft-ask-de.png"))


def test_the_worker_shows_two_action_buttons_each_with_its_own_click_link(storefront, browser, worker, app):
    shop = storefront
    click = f"{shop.base}/c/{make_click_token(app.config['SECRET_KEY'], 9)}"
    payload = build_payload(push_id=9, kind="welcome", title="Welcome!", body="10 % off with WELCOME10", url=click,
                            actions=action_links(click, [{"title": "See the sale", "url": "x"},
                                                         {"title": "Use WELCOME10", "url": "y"}]))
    worker.deliver(payload.decode("utf-8"))
    [shown] = wait_for(worker.shown, message="the notification with buttons")
    options = shown["options"]
    assert options["actions"] == [{"action": "a1", "title": "See the sale"}, {"action": "a2", "title": "Use WELCOME10"}]
    # What the worker's notificationclick opens for each button (and for the notification itself).
    assert options["data"]["actions"] == {"a1": f"{click}?a=1", "a2": f"{click}?a=2"}
    assert options["data"]["url"] == click
    assert json.loads(payload)["actions"][1]["url"] == f"{click}?a=2"
