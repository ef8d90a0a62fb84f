"""Whose turn it is: PostgreSQL session advisory locks, so that one process alone does a job.

The locks live on one connection of their own: they are held until released or until the
process dies, and then another process's `take` succeeds within its next attempt.
"""

from __future__ import annotations

import hashlib
import logging
import os
from typing import Any

import psycopg

log = logging.getLogger("yaosu.turns")


def lock_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class Turns:
    def __init__(self, conninfo: dict[str, Any], who: str) -> None:
        # The connection is named `<who>-<pid>`, so operators (and tests) see who holds what.
        self.conninfo, self.who = conninfo, who
        self.conn: Any = None
        self.held: set[str] = set()

    def take(self, name: str) -> bool:
        if name in self.held:
            return True
        if self.conn is None:
            self.conn = psycopg.connect(**self.conninfo, autocommit=True, application_name=f"{self.who}-{os.getpid()}")
        if self.conn.execute("SELECT pg_try_advisory_lock(%s)", [lock_key(name)]).fetchone()[0]:
            self.held.add(name)
            return True
        return False

    def still_held(self) -> bool:
        """False, and nothing held any more, if the connection holding the locks has died."""
        if self.conn is None or not self.held:
            return True
        try:
            self.conn.execute("SELECT 1")
            return True
        except psycopg.Error:
            log.warning("%s: lost the connection holding its locks", self.who)
            self.drop()
            return False

    def drop(self) -> None:
        if self.conn is not None:
            try:
                # Released now, not whenever the server notices the connection is gone.
                self.conn.execute("SELECT pg_advisory_unlock_all()")
                self.conn.close()
            except psycopg.Error:
                pass
        self.conn = None
        self.held.clear()
