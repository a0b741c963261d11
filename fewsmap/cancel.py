"""Cooperative cancellation of long renders: the caller sets a token, the render checks it.

Render threads cannot be killed, so a render that was given up (its client disconnected, its
time limit passed) would otherwise run to its end and keep its render slot. The limiter gives
each render a `CancelToken` in the render thread's context; long renders call `checkpoint`
between their steps (an animation between frames) and stop there once the token is set.
"""

from __future__ import annotations

import threading
from contextvars import ContextVar

from fewsmap.errors import RenderCancelled

_current: ContextVar[CancelToken | None] = ContextVar("fewsmap_cancel_token", default=None)


class CancelToken:
    """A flag one thread sets and another checks, with the reason it was set."""

    def __init__(self) -> None:
        self._set = threading.Event()
        self.reason = ""

    def cancel(self, reason: str) -> None:
        """Ask the render holding this token to stop at its next checkpoint."""
        if not self._set.is_set():
            self.reason = reason
            self._set.set()

    @property
    def cancelled(self) -> bool:
        """Tell whether the render was asked to stop."""
        return self._set.is_set()

    def install(self) -> None:
        """Make this the token `checkpoint` checks in the current context."""
        _current.set(self)


def checkpoint() -> None:
    """Stop the current render here if its token was set.

    Raises
    ------
    RenderCancelled
        If the render running in this context was cancelled.
    """
    token = _current.get()
    if token is not None and token.cancelled:
        raise RenderCancelled(f"render stopped: {token.reason}")
