"""The wiring (装配): settings → the store, the read models, Kafka clients → each entrypoint.

Every process the `yaosu` command starts is built here, one way, from one `Settings`. The HTTP and
Kafka sides are imported when asked for, so a command loads only what it runs.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from infra.clock import city_today
from infra.settings import Settings
from projections import sedimentation
from projections.db import NotBuilt
from projections.read import ReadModelBehind, ReadModels
from projections.runner import Runner
from service.bootstrap import build_ledger
from service.ledger import Ledger
from yaosu.following import FollowingProcess

if TYPE_CHECKING:
    from fastapi import FastAPI

    from consumers.monitor import Monitor
    from consumers.notify import Notifier
    from consumers.portal import PortalConsumer
    from consumers.relay import Relay


class Wiring:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._ledger: Ledger | None = None
        self._reads: list[ReadModels] = []
        self._advice_reads: ReadModels | None = None

    @property
    def ledger(self) -> Ledger:
        """The one `Ledger` of this process (opening the store makes its tables once)."""
        if self._ledger is None:
            self._ledger = build_ledger(self.settings, advisor=self.advise)
        return self._ledger

    def advise(self, year: int, factor: str, total: Decimal, as_of: date) -> list[tuple[str, Decimal]] | None:
        """The advisor of `allocation.adopted`: the advice `GET /v1/allocation/advice` gives with these
        `year`, `factor`, `total` and `as_of`, from the read model as it stands (district → share); None
        when the read side cannot say (no read models kept, not built yet, or no district ranked)."""
        if not self.keeps_read_models:
            return None
        if self._advice_reads is None:
            self._advice_reads = ReadModels(self.settings, connections=1)
            self._reads.append(self._advice_reads)
        try:
            with self._advice_reads.snapshot(sedimentation.Sedimentation) as view:
                shares = sedimentation.advice(view.of(sedimentation.Sedimentation), year, factor, total, as_of,
                                              self.settings.thresholds)
        except (NotBuilt, ReadModelBehind):
            return None
        return [(share.district, share.share) for share in shares] or None

    @property
    def keeps_read_models(self) -> bool:
        return self.settings.location.kind != "memory"

    def runner(self, batch_size: int = 1000) -> Runner:
        return Runner(self.ledger, self.settings, batch_size=batch_size)

    def following(self) -> FollowingProcess:
        """The read models followed by a process of their own beside the server (`yaosu serve`), woken by
        this process's commits (start it with the server, stop it before closing this wiring)."""
        process = FollowingProcess()
        self.ledger.on_commit(process.wake)
        return process

    def app(self, runner: Runner | FollowingProcess | None = None) -> FastAPI:
        """The HTTP API; with the runner that follows the store for it (in this process or beside it), whose
        commits wake the readers waiting for them."""
        from api.app import create_app

        ledger = self.ledger  # first: opening the store makes its schema, where the read models live
        reads = ReadModels(self.settings) if self.keeps_read_models else None
        if reads is not None:
            self._reads.append(reads)
        if runner is not None and reads is not None:
            runner.on_moved(reads.moved)
        app = create_app(ledger, self.settings, reads)
        app.state.runner = runner  # its trouble, if any, makes the server not ready (`/readyz`)
        return app

    def __enter__(self) -> Wiring:
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()

    def close(self) -> None:
        """Close what this wiring opened (the read models' connections, then the store's)."""
        for reads in self._reads:
            reads.close()
        self._reads.clear()
        self._advice_reads = None
        if self._ledger is not None:
            self._ledger.close()
            self._ledger = None

    def portal_consumer(self, group: str, batch_size: int) -> PortalConsumer:
        from consumers.portal import PortalConsumer

        return PortalConsumer(self.ledger, self.settings, group=group, batch_size=batch_size)

    def relay(self) -> Relay:
        from consumers.relay import Relay

        return Relay(self.ledger, self.settings)

    def monitor(self, today: date | None = None) -> Monitor:
        from consumers.monitor import Monitor

        clock: Callable[[], date] = (lambda: today) if today else city_today  # type: ignore[assignment,return-value]
        return Monitor(self.ledger, self.settings, today=clock)

    def notifier(self, from_beginning: bool = False) -> Notifier:
        """`yaosu notify`, with the targets file checked first (`consumers.targets.TargetsError` if it does not pass)."""
        from consumers import targets
        from consumers.notify import Notifier

        if self.settings.notify_targets is None:
            raise targets.TargetsError(Path("YAOSU_NOTIFY_TARGETS"),
                                       [("setting", "not_set", "name the targets file (a JSON file, see the README)")])
        checked = targets.load(self.settings.notify_targets)  # before anything is opened
        return Notifier(self.ledger, self.settings, checked, from_beginning=from_beginning)
