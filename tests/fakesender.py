"""The tests' one fake sender: the ``Sender`` protocol (``server.delivery.push``) without a network.

It records every batch it is handed and answers each message with what ``answer`` says
(``SendResult("sent", 201)`` unless told otherwise), so a test can drive the dispatcher's
outcomes without a push service. Tests of the real network path use ``web-push-testing`` or
``tests/fakepush.py`` (a programmable push service) with the real ``WebPushSender`` instead.
"""
from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Sequence

from server.delivery.push import Message
from server.delivery.push.outcomes import SendResult


class FakeSender:
    """Records batches; answers each message with ``answer(message)``."""

    def __init__(self, answer: Callable[[Message], SendResult] | None = None) -> None:
        self.answer = answer or (lambda message: SendResult("sent", 201))
        self.batches: list[list[Message]] = []
        self.closed = False

    def prepare(self, messages: Sequence[Message]) -> list[Message]:
        """Nothing to encrypt: the batch as it is."""
        return list(messages)

    def start(self, prepared: list[Message]) -> concurrent.futures.Future[list[SendResult]]:
        """Record the batch and answer it at once."""
        self.batches.append(prepared)
        done: concurrent.futures.Future[list[SendResult]] = concurrent.futures.Future()
        done.set_result([self.answer(message) for message in prepared])
        return done

    def close(self) -> None:
        self.closed = True
