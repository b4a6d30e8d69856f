"""Ctrl-C and SIGTERM during training: the first asks the run to stop after the current step (it
then writes a checkpoint and ends as interrupted); a second aborts at once."""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType, TracebackType


class StopOnSignals:
    """A context manager; `requested` turns true at the first SIGINT/SIGTERM. Outside the main
    thread (where Python cannot install handlers) it installs nothing."""

    def __init__(self, announce: bool = True) -> None:
        self.requested = False
        self.announce = announce
        self._previous: dict[int, object] = {}

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        if self.announce:
            print(
                f"\n{signal.Signals(signum).name}: stopping after this step and writing a checkpoint "
                "(Ctrl-C again to abort without one)",
                file=sys.stderr,
                flush=True,
            )

    def __enter__(self) -> StopOnSignals:
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handler) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)  # type: ignore[arg-type]
        self._previous = {}
