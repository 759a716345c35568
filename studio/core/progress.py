"""The one progress protocol of the core: ``progress(done, total, message)`` and a stop flag.

Long core functions take both and never draw a progress bar themselves, so one function
serves the command line (which adapts ``progress`` to tqdm) and the window (which adapts it
to a Qt signal). ``message`` names the stage; text after the first ": " is a live detail
(``"photos: 12 faces, 1.3 faces/s"``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sized
from typing import TypeVar

#: ``progress(done, total, message)``: ``done`` of ``total`` steps of the stage ``message``.
Progress = Callable[[int, int, str], None]
#: ``stop()`` is true once the caller wants the work to end early (a window's Cancel).
Stop = Callable[[], bool]

T = TypeVar("T")


def no_progress(done: int, total: int, message: str) -> None:
    """The default: nobody is watching."""


def never_stop() -> bool:
    return False


def track(items: Iterable[T], progress: Progress | None, message: str,
          total: int | None = None) -> Iterator[T]:
    """Yield ``items``, reporting each one as done: the core's replacement for a tqdm loop."""
    report = progress or no_progress
    if total is None:
        total = len(items) if isinstance(items, Sized) else 0
    report(0, total, message)
    for done, item in enumerate(items, 1):
        yield item
        report(done, total, message)
