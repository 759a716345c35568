"""No network from the libraries the analysis runs (docs/privacy.md says why and how).

- ONNX Runtime (>= 1.29, the gender network) uploads telemetry on Linux and macOS and keeps
  a device id and an event store in ``~/.cache/Microsoft/DeveloperTools/.onnxruntime``.
  ``ORT_DISABLE_TELEMETRY=1``, set before onnxruntime is imported, turns all of it off; this
  module sets it when imported, and ``onnxruntime_offline`` imports onnxruntime after it.
- MediaPipe's PyPI build (1.2.x, the landmarker) posts usage metrics to play.googleapis.com
  from a thread of every task it creates, and has no switch to turn that off
  (https://github.com/google-ai-edge/mediapipe/issues/6291). ``without_network`` creates the
  task in a short-lived thread that a seccomp filter forbids to open sockets: the threads
  MediaPipe starts there, its uploader among them, inherit the filter, and the rest of the
  process keeps its network (Linux only; no root needed).
"""

from __future__ import annotations

import errno
import functools
import os
import sys
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any, TypeVar

from studio.core.errors import StudioError

T = TypeVar("T")

#: Set to 1 to run MediaPipe where it cannot be contained (macOS, Windows, no seccomp),
#: accepting that it may send usage metrics to Google.
ALLOW_METRICS_ENV = "STUDIO_ALLOW_MEDIAPIPE_METRICS"
#: System calls refused (with EACCES) in a contained thread: no socket of any family, so no
#: DNS either (glibc's resolver, nscd and systemd-resolved all need one).
BLOCKED_SYSCALLS = ("socket", "connect")

# Before any import of onnxruntime: later it cannot stop the uploader it already started.
os.environ["ORT_DISABLE_TELEMETRY"] = "1"


class NetworkContainmentError(StudioError):
    """A library that would reach the network cannot be run without it here."""


def onnxruntime_offline() -> ModuleType:
    """onnxruntime with its telemetry off (the variable above, and the runtime switch)."""
    import onnxruntime

    onnxruntime.disable_telemetry_events()
    return onnxruntime


@functools.cache
def _seccomp() -> ModuleType:
    if not sys.platform.startswith("linux"):
        raise NetworkContainmentError(
            f"MediaPipe sends usage metrics to Google and cannot be switched off; the studio "
            f"blocks them with Linux seccomp, which {sys.platform} lacks. Block Python's "
            f"outgoing connections with a firewall and set {ALLOW_METRICS_ENV}=1 to run it "
            f"anyway (docs/privacy.md).")
    try:
        import pyseccomp
    except (ImportError, RuntimeError, OSError) as exc:  # RuntimeError: no libseccomp.so
        raise NetworkContainmentError(
            f"MediaPipe sends usage metrics to Google unless the studio blocks them, which "
            f"needs libseccomp (apt-get install libseccomp2) and the pyseccomp package: {exc}. "
            f"Set {ALLOW_METRICS_ENV}=1 to run without it (docs/privacy.md).") from exc
    return pyseccomp


def _deny_sockets(seccomp: ModuleType) -> None:
    """Refuse new sockets to this thread and to every thread it starts from now on."""
    refuse = seccomp.SyscallFilter(seccomp.ALLOW)  # sets no_new_privs: no root needed
    for name in BLOCKED_SYSCALLS:
        refuse.add_rule(seccomp.ERRNO(errno.EACCES), name)
    refuse.load()  # this thread only (no TSYNC): the caller's thread is untouched


def without_network(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` in a new thread, and threads it starts, that open no socket.

    Raises NetworkContainmentError where that cannot be done, unless the user allowed
    MediaPipe's metrics with ``STUDIO_ALLOW_MEDIAPIPE_METRICS=1``.
    """
    if os.environ.get(ALLOW_METRICS_ENV) == "1":
        return fn(*args, **kwargs)
    seccomp = _seccomp()
    outcome: dict[str, Any] = {}

    def contained() -> None:
        try:
            _deny_sockets(seccomp)
        except OSError as exc:
            outcome["error"] = NetworkContainmentError(
                f"The kernel refused the seccomp filter that keeps MediaPipe off the network "
                f"({exc}). Set {ALLOW_METRICS_ENV}=1 to run without it (docs/privacy.md).")
            return
        try:
            outcome["value"] = fn(*args, **kwargs)
        except BaseException as exc:  # handed to the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=contained, name="studio-offline", daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
