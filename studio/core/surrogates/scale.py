"""Photos spread over a Ray cluster: a Ray Data pipeline whose workers load the models once.

``studio batch --ray`` and ``studio anonymize --ray`` hand their photos to ``ray_map``: a
list of items (``ray.data.from_items``) goes through ``map_batches`` with a stateful
callable class run by a pool of actors, one photo per batch, and each result comes back to
the driver, which alone writes (the workspace stays single-writer; the anonymised files
are written by the one process that checks they are new). The worker is made by a factory
the caller gives: it loads the models in the actor's constructor, once per actor.

Results travel pickled, as bytes: a photo's result holds numpy arrays and dataclasses,
which Ray Data would otherwise try to turn into Arrow columns.

A worker that dies (a native crash on a photo, the out-of-memory killer, a lost node) loses
only the photo it was on: Ray restarts the actor (``max_restarts``), which loads the models
again, and retries that photo (``max_task_retries``). A photo whose worker died on every try
comes back as lost (``None``); the caller records it, as ``workspace.guard`` records a photo
that kills the batch alone. Ray is an optional extra, imported only here and only when a
pipeline runs, so that ``studio --help`` and the plain path never load it.
"""

from __future__ import annotations

import logging
import os
import pickle
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from studio.core.errors import StudioError

#: What ``--ray`` says when Ray is not installed.
RAY_MISSING = "--ray needs Ray: install the ray extra: pip install .[ray]"
#: A photo is tried this many times more on a fresh worker when its worker dies.
TASK_RETRIES = 2
#: For tests only: ``"TEXT"`` makes a worker exit abruptly on every item whose path holds
#: TEXT; ``"TEXT|MARKER"`` only while the file MARKER does not exist (it is made first), so
#: that the worker dies once. Read by the driver and handed to the workers.
CRASH_HOOK_ENV = "STUDIO_RAY_TEST_CRASH"

#: ``ray_map``'s worker: made once per actor (models loaded), then called for each item.
Worker = Callable[[dict], Any]


def import_ray():
    """Ray and Ray Data, or the message that says how to install them."""
    try:
        import ray
        import ray.data  # the pipeline needs the data library (pandas, pyarrow) too
    except ImportError as exc:
        raise StudioError(RAY_MISSING) from exc
    return ray


#: How long joining a cluster may wait for its head to answer, in seconds.
JOIN_TIMEOUT = 10.0


def check_reachable(address: str, timeout: float = JOIN_TIMEOUT) -> None:
    """A StudioError naming ``address`` unless something answers at its host and port
    within ``timeout`` s: Ray itself would retry a dead address forever. Addresses with
    no port (``auto``) are left to Ray."""
    import socket

    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        return
    try:
        with socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)),
                                      timeout=timeout):
            pass
    except OSError as exc:
        why = "no answer" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise StudioError(f"cannot join Ray at {address}: nothing answers there ({why} "
                          f"within {timeout:g} s); is the cluster running, and is that its "
                          "address?") from None


@contextmanager
def ray_session(address: str | None = None, workers: int | None = None) -> Iterator[int]:
    """Ray started on this machine (``address`` None or "local"; ``workers`` CPUs, default
    all of them) or joined at ``address``; yields how many workers to use, and shuts down
    on the way out what it started or joined. An already initialised Ray (a test's, a
    notebook's) is used as it is and left running."""
    ray = import_ray()
    own = not ray.is_initialized()
    if own:
        quiet = {"include_dashboard": False, "log_to_driver": False,
                 "logging_level": logging.WARNING}
        try:
            if address in (None, "", "local"):
                ray.init(address="local", num_cpus=workers or os.cpu_count() or 1, **quiet)
            else:
                check_reachable(address)
                ray.init(address=address, **quiet)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise StudioError(f"cannot start or join Ray at {address or 'local'}: {exc}") \
                from exc
    try:
        yield max(1, workers or int(ray.cluster_resources().get("CPU", 1)))
    finally:
        if own:
            ray.shutdown()


@dataclass(frozen=True)
class _Failure:
    """A worker's StudioError (models missing, rendering unavailable): stops the run."""

    message: str


def _crash_if_asked(hook: str | None, item: dict) -> None:
    if not hook:
        return
    text, _, marker = hook.partition("|")
    if text not in str(item.get("path", "")):
        return
    if marker:
        if os.path.exists(marker):
            return
        with open(marker, "a", encoding="utf-8"):
            pass
    os._exit(3)  # as a native crash would: no exception, no clean-up


class _Actor:
    """The callable class of ``map_batches``: one per actor, the worker made once."""

    def __init__(self, make_worker: Callable[[], Worker], crash_hook: str | None) -> None:
        self.crash_hook = crash_hook
        self.error: str | None = None
        self.work: Worker | None = None
        try:
            self.work = make_worker()
        except StudioError as exc:  # every photo would fail alike: said once per photo
            self.error = str(exc)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        keys, results = [], []
        for key, blob in zip(batch["key"], batch["item"], strict=True):
            item = pickle.loads(blob)
            if self.work is None:
                result: Any = _Failure(self.error or "the worker could not start")
            else:
                _crash_if_asked(self.crash_hook, item)
                try:
                    result = self.work(item)
                except StudioError as exc:
                    result = _Failure(str(exc))
            keys.append(int(key))
            results.append(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
        return {"key": np.asarray(keys, np.int64), "result": np.asarray(results, object)}

    def __del__(self) -> None:
        close = getattr(self.work, "close", None)
        if close is not None:
            close()


def ray_map(items: list[dict], make_worker: Callable[[], Worker], workers: int,
            retries: int = TASK_RETRIES) -> Iterator[tuple[dict, Any]]:
    """``(item, result)`` for every item as its worker hands it back (not in order), then
    ``(item, None)`` for each item lost with its worker ``retries + 1`` times. Each item
    should name its file as ``item["path"]``. Needs a Ray session (``ray_session``);
    ``make_worker`` must be picklable (a module-level function or class, or a partial of
    one). A worker's StudioError stops the run, raised here."""
    if not items:
        return
    ray = import_ray()
    from ray.data import ActorPoolStrategy, DataContext

    context = DataContext.get_current()
    saved = (context.max_errored_blocks, context.enable_progress_bars)
    # A block whose worker died on every try is dropped, not fatal: it is reported as lost.
    context.max_errored_blocks = -1
    context.enable_progress_bars = False  # the caller reports progress
    data_log = logging.getLogger("ray.data")
    level = data_log.level
    data_log.setLevel(logging.CRITICAL)  # lost photos are the caller's to report
    try:
        rows = ray.data.from_items([
            {"key": i, "item": pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL)}
            for i, item in enumerate(items)])
        with warnings.catch_warnings():
            # Ray 2.60 takes max_restarts and max_task_retries only as ray_remote_args,
            # which it marks deprecated (named parameters for them are still to come).
            warnings.simplefilter("ignore", DeprecationWarning)
            results = rows.map_batches(
                _Actor, batch_size=1, batch_format="numpy",
                fn_constructor_kwargs={"make_worker": make_worker,
                                       "crash_hook": os.environ.get(CRASH_HOOK_ENV)},
                # One photo in flight per actor: a death takes no bystander with it.
                compute=ActorPoolStrategy(min_size=1, max_size=workers, initial_size=workers,
                                          max_tasks_in_flight_per_actor=1),
                num_cpus=1, max_restarts=-1, max_task_retries=retries)
        done: set[int] = set()
        for row in _rows(ray, results):
            key = int(row["key"])
            result = pickle.loads(row["result"])
            if isinstance(result, _Failure):
                raise StudioError(result.message)
            if key not in done:  # a retried photo whose first result was seen counts once
                done.add(key)
                yield items[key], result
        for key, item in enumerate(items):
            if key not in done:
                yield item, None
    finally:
        context.max_errored_blocks, context.enable_progress_bars = saved
        data_log.setLevel(level)


def _rows(ray, dataset) -> Iterator[dict]:
    """The pipeline's rows; Ray's own failures (a worker that cannot start: the studio or a
    model file missing on a node) said in one line, with where Ray keeps its logs."""
    try:
        yield from dataset.iter_rows()
    except ray.exceptions.RayError as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        raise StudioError(f"the Ray pipeline failed: {lines[-1] if lines else type(exc).__name__}"
                          " (Ray's logs: session_latest/logs in Ray's temp folder, /tmp/ray "
                          "by default)") from exc
