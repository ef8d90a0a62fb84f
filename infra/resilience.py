"""Staying up: which failures are passing (a broker or database restarting), and backing off."""

from __future__ import annotations

import logging
import sqlite3
import threading
from typing import Callable

import psycopg
from eventsourcing.persistence import InterfaceError, OperationalError
from kafka.errors import KafkaError

#: Failures that go away when the service comes back: retry, never crash on them.
TRANSIENT: tuple[type[BaseException], ...] = (
    OperationalError, InterfaceError, psycopg.OperationalError, psycopg.InterfaceError,
    sqlite3.OperationalError, KafkaError, ConnectionError, TimeoutError,
)


def keep_running(step: Callable[[], None], stopping: threading.Event, log: logging.Logger,
                 recover: Callable[[], None] = lambda: None, *, first: float = 0.5, most: float = 10) -> None:
    """Call `step` until `stopping` is set; after a passing failure call `recover` and wait,
    doubling the wait up to `most` seconds, back to `first` once a step succeeds."""
    delay = first
    while not stopping.is_set():
        try:
            step()
            delay = first
        except TRANSIENT as error:
            log.warning("%s: %s; retrying in %.1fs", type(error).__name__, error, delay)
            try:
                recover()
            except TRANSIENT:
                pass  # still down: the next step tries again
            stopping.wait(delay)
            delay = min(delay * 2, most)
