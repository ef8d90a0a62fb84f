"""The read models followed beside `yaosu serve` by a process of its own (`yaosu projections run`).

In one process, the runner's steps and the API's requests take turns on Python's interpreter lock,
and a reader waiting for its write waits behind both: at 500 messages/s, the embedded end-to-end
p99 was 67-114 ms with the runner inside the server and 38 ms beside it (README, "End to end").
A process of its own runs on a core of its own. Two pipes join the two:

- the server writes a byte to the first after each commit it makes, so that the runner steps at
  once rather than at its next poll;
- the runner writes a line to the second after each commit it makes (`m`: the readers waiting are
  looked at again), and when it starts and its trouble changes (`t <text>`, or `t` alone when it
  has none). The server is not ready (`/readyz`) until the runner has said it follows.

Losing either (a full pipe) costs only a poll: the runner and the readers poll as they would
without it. The runner's end is the server's to see: it is started again, its trouble shown by
`/readyz` meanwhile. The server's end, even killed, closes the first pipe, and the runner stops.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from typing import Callable

from projections.runner import Runner

log = logging.getLogger("yaosu.following")
#: Seconds before a runner process that ended is started again: doubled at each end, up to the last.
RESTART_SECONDS = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)
#: A runner that ran this long before it ended starts again after the first pause.
STEADY_SECONDS = 60.0
#: How often the runner process looks whether its trouble changed, to tell the server.
TROUBLE_SECONDS = 0.5
#: The most of a trouble's text told (a pipe writes up to 4,096 bytes at once, whole).
TROUBLE_CHARS = 1000
#: How long the runner process waits for its first step before it says it follows all the same.
FIRST_STEP_SECONDS = 10.0


class FollowingProcess:
    """`yaosu projections run` as a child of this process, told of this process's commits."""

    def __init__(self) -> None:
        self.trouble: str | None = None
        self._listeners: list[Callable[[], None]] = []
        self._stopping = threading.Event()
        self._wake = -1
        self._wake_lock = threading.Lock()  # a write never goes to a number closed, then reused, meanwhile
        self._process: subprocess.Popen[bytes] | None = None
        self._watch: threading.Thread | None = None

    def on_moved(self, listener: Callable[[], None]) -> None:
        """Call `listener` after each commit of the runner (the readers of this process wait on it)."""
        self._listeners.append(listener)

    def start(self) -> None:
        self._watch = threading.Thread(target=self._keep, name="projections-process", daemon=True)
        self._watch.start()

    def wake(self) -> None:
        """Events were stored: the runner steps now (nothing is lost if it is told too often or not at all)."""
        with self._wake_lock:
            try:
                os.write(self._wake, b"w")
            except OSError:  # full (it has been told), closed or not started: it polls meanwhile
                pass

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the runner between two steps and wait for it (killed past `timeout`)."""
        self._stopping.set()
        self._close_wake()
        process = self._process
        if process is not None:
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("the projections process did not stop within %.0f s; killed", timeout)
                process.kill()
                process.wait()
        if self._watch is not None:
            self._watch.join(timeout)

    def _close_wake(self) -> None:
        with self._wake_lock:
            wake, self._wake = self._wake, -1
            if wake >= 0:
                os.close(wake)

    def _keep(self) -> None:
        pause = 0
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                ended = f"ended (exit code {self._run_once()})"
            except OSError as error:  # it could not be started (no memory, no process left, ...)
                ended = f"could not start ({error})"
            if self._stopping.is_set():
                return
            pause = 0 if time.monotonic() - started > STEADY_SECONDS else min(pause + 1, len(RESTART_SECONDS) - 1)
            self.trouble = f"the projections process {ended}; it starts again in {RESTART_SECONDS[pause]:.0f} s"
            log.error("%s", self.trouble)
            self._stopping.wait(RESTART_SECONDS[pause])

    def _run_once(self) -> int:
        wake_read, wake_write = os.pipe()
        tell_read, tell_write = os.pipe()
        os.set_blocking(wake_write, False)
        command = [sys.executable, "-m", "yaosu", "projections", "run", "--wake-fd", str(wake_read),
                   "--tell-fd", str(tell_write)]
        try:
            self._process = subprocess.Popen(command, pass_fds=(wake_read, tell_write))
        except OSError:
            os.close(wake_write)
            os.close(tell_read)
            raise
        finally:
            os.close(wake_read)
            os.close(tell_write)
        with self._wake_lock:
            self._wake = wake_write
        if self._stopping.is_set():  # stopped while it started: it sees the pipe close
            self._close_wake()
        self.trouble = "the projections process is starting"  # until it says it follows
        with os.fdopen(tell_read, "rb") as told:
            for line in told:
                if line == b"m\n":
                    for listener in self._listeners:
                        listener()
                elif line.startswith(b"t"):
                    self.trouble = line[1:].decode(errors="replace").strip() or None
        self._close_wake()
        return self._process.wait()


def follow_beside_server(runner: Runner, wake_fd: int, tell_fd: int) -> None:
    """The runner process's side: step when the server stored events, tell it each commit and trouble,
    stop when the server is gone. Returns at once; `runner.run_forever()` does the work."""
    os.set_blocking(tell_fd, False)
    lock = threading.Lock()

    def tell(line: bytes) -> bool:
        with lock:
            try:
                return os.write(tell_fd, line) == len(line)
            except BlockingIOError:  # the server is busy: its readers poll meanwhile
                return False
            except OSError:  # the server is gone
                runner.stop()
                return False

    def listen() -> None:
        with os.fdopen(wake_fd, "rb", buffering=0) as wake:
            while wake.read(4096):
                runner.wake()
        runner.stop()  # the server closed its end: it stopped, or died

    def report() -> None:
        # The first step makes the read models' tables: the server is ready once they are there (or
        # once some other runner owns them all: looked at for `FIRST_STEP_SECONDS` at most).
        deadline = time.monotonic() + FIRST_STEP_SECONDS
        while not runner.generations and runner.trouble is None and time.monotonic() < deadline:
            if runner.stopping.wait(0.02):
                return
        told: object = report  # nothing told yet: the first look says it follows (or what is wrong)
        while True:
            trouble = runner.trouble
            said = (trouble or "").replace("\n", " ")[:TROUBLE_CHARS].encode()  # one line, written whole
            if trouble != told and tell(b"t" + said + b"\n"):
                told = trouble
            if runner.stopping.wait(TROUBLE_SECONDS):
                return

    runner.on_moved(lambda: tell(b"m\n"))
    threading.Thread(target=listen, name="server-wakes", daemon=True).start()
    threading.Thread(target=report, name="trouble-told", daemon=True).start()
