"""Stopping promptly: one object every wait goes through, set by signals or a deadline."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from pathlib import Path

#: Longest single wait, so the heartbeat file stays fresh during long pauses.
_MAX_SLICE_SECONDS = 1.0


class Stopper:
    """Tells the sender when to stop and makes every pause interruptible.

    Stopping is requested by a signal handler (:meth:`request_stop`) or happens when the
    deadline passes. All waiting (pacing, backoff, readiness polls, in-flight requests) goes
    through :meth:`wait`, which returns as soon as a stop is requested. When a heartbeat file
    is given, every wait touches it, so the container's health check can tell a live loop
    from a hung one.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        heartbeat_file: Path | None = None,
    ) -> None:
        self._event = threading.Event()
        self._clock = clock
        self._deadline: float | None = None
        self._heartbeat_file = heartbeat_file
        self._last_beat = float("-inf")
        self.reason: str | None = None

    def request_stop(self, reason: str) -> None:
        """Ask the sender to stop (safe to call from a signal handler)."""
        if self.reason is None:
            self.reason = reason
        self._event.set()

    def stop_after(self, seconds: float) -> None:
        """Stop ``seconds`` from now (the ``--duration`` limit)."""
        self._deadline = self._clock() + seconds

    @property
    def stopped(self) -> bool:
        """Whether the sender must stop now."""
        if self._event.is_set():
            return True
        if self._deadline is not None and self._clock() >= self._deadline:
            self.request_stop("duration")
            return True
        return False

    def wait(self, seconds: float) -> bool:
        """Pause up to ``seconds`` (less if the deadline comes first); True when stopping."""
        end = self._clock() + max(0.0, seconds)
        if self._deadline is not None:
            end = min(end, self._deadline)
        while not self.stopped:
            self.beat()
            left = end - self._clock()
            if left <= 0:
                return False
            self._event.wait(min(left, _MAX_SLICE_SECONDS))
        return True

    def beat(self) -> None:
        """Touch the heartbeat file (at most once a second)."""
        if self._heartbeat_file is None:
            return
        now = self._clock()
        if now - self._last_beat < 1.0:
            return
        self._last_beat = now
        # A full disk or a removed directory must not stop the sender.
        with contextlib.suppress(OSError):
            self._heartbeat_file.touch()
