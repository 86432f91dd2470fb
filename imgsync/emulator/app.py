"""The emulator's parts: one account's state and settings, its faults, request log, rate limits
and task workers, and what an endpoint handler is given (:class:`Call`).

Independent of HTTP plumbing (see :mod:`imgsync.emulator.server`) and of routing (see
:mod:`imgsync.emulator.routing`, which runs the handlers on these parts): the handlers, the control
plane and the server all build on this module, and it imports none of them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .faults import FaultPlan
from .protocol import Params
from .settings import Settings
from .state import State
from .tasks import TaskRunner
from .traffic import RateLimiter, RequestLog


class EmulatorApp:
    """State, settings, faults, request log, rate limits and task workers of one emulator."""

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        data_dir: Path | None,
        config: Mapping[str, Any] | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.sleep = sleep
        # What reset returns to: defaults plus the constructor's config.
        self.initial_settings = Settings().updated(config or {})
        self.state = State(client_id, data_dir, self.initial_settings)
        if config:
            self.state.settings = self.state.settings.updated(config)
        self.faults = FaultPlan()
        self.log = RequestLog()
        self.limiter = RateLimiter()
        self.tasks = TaskRunner(self.state)
        self.base_url = ""  # set by the server once it knows its port

    @property
    def settings(self) -> Settings:
        return self.state.settings

    def configure(self, changes: Mapping[str, Any]) -> Settings:
        """Apply a validated settings change (raises SettingsError) and wake waiting workers."""
        with self.state.lock:
            self.state.settings = self.state.settings.updated(changes)
            self.state.mark_dirty()
            self.state.commit()
            self.tasks.wake()
            return self.state.settings

    def reset(self) -> None:
        """Forget files, folders, tasks, tokens, faults, settings and the request log."""
        with self.state.lock:
            self.tasks.forget_all()
            self.state.reset(self.initial_settings)
        self.faults.clear()
        self.log.clear()
        self.limiter.clear()


@dataclass(frozen=True)
class Call:
    """What an endpoint handler gets: the app, its parameters and the caller's client id."""

    app: EmulatorApp
    params: Params
    client_id: str
