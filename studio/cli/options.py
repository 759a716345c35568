"""What several commands share, declared once: options, attribute flags, progress bars.

Nothing here imports a heavy module at import time: ``studio --help`` builds every parser.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from studio.core.assets import user_cache_dir

if TYPE_CHECKING:
    from studio.core.analysis.attributes import Attributes
    from studio.core.progress import Progress

#: The user's cache: training crops, label caches and training runs by default.
CACHE = user_cache_dir()
LABELS = CACHE / "labels.jsonl"
RUNS = CACHE / "runs" / "began"


def add_quiet(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def add_strict(p: argparse.ArgumentParser, what: str = "a bar") -> None:
    p.add_argument("--strict", action="store_true", help=f"exit 1 when {what} is missed")


def add_weights(p: argparse.ArgumentParser) -> None:
    from studio.core.generator.choices import BY_KEY, DEFAULT

    p.add_argument("--weights", default=None, metavar="NAME|FILE",
                   help=f"generator: {' or '.join(BY_KEY)} (default {DEFAULT.key}), or a "
                        "safetensors file")


#: ``--workers`` when not given: two photos in flight, or one on a one-core machine.
WORKERS = min(2, os.cpu_count() or 1)


def cpus() -> int:
    """The CPUs this process may run on (a container's or taskset's share, not the host's)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


#: The most ``--workers`` a Ray cluster elsewhere is given (its own CPUs bound it there).
MAX_CLUSTER_WORKERS = 4096


def _workers(text: str, most: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: at least 1 worker")
    if value > most:
        raise argparse.ArgumentTypeError(f"{value}: at most {most}, the CPUs of this "
                                         "machine (each worker loads its own models)")
    return value


def _too_many_here(workers: int | None) -> None:
    from studio.core.errors import StudioError

    if workers is not None and workers > cpus():
        raise StudioError(f"--workers {workers}: at most {cpus()}, the CPUs of this machine "
                          "(each worker loads its own models); more only on a Ray cluster "
                          "elsewhere (--ray=ADDRESS)")


def add_workers(p: argparse.ArgumentParser, help: str | None = None,
                default: int | None = WORKERS, cluster: bool = False) -> None:
    """``--workers N``: 1 to the CPU count, refused otherwise before any work; with
    ``cluster`` (a command with ``--ray``) up to MAX_CLUSTER_WORKERS, the CPU count being
    checked by ``ray_options`` unless the run goes to a cluster elsewhere."""
    most = MAX_CLUSTER_WORKERS if cluster else cpus()
    p.add_argument("--workers", type=lambda text: _workers(text, most), default=default,
                   metavar="N", help=f"{help or 'workers in parallel'} (1 to {cpus()}, this "
                   "machine's CPUs" + (", or more on a Ray cluster)" if cluster else ")"))


def _face_px(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 4 <= value <= 10_000:  # NaN fails too
        raise argparse.ArgumentTypeError(f"{text!r} is not a face size in pixels (4 to 10000)")
    return value


def add_min_face(p: argparse.ArgumentParser) -> None:
    """``--min-face``: how small a face is looked for (the recall detector's finest scale)."""
    from studio.core.analysis.search_settings import MIN_FACE_DEFAULT

    p.add_argument("--min-face", type=_face_px, default=MIN_FACE_DEFAULT, metavar="PX",
                   help=f"the smallest face to look for, in pixels (default "
                        f"{MIN_FACE_DEFAULT}); faces under 24 px are blurred, not replaced")


def add_face_search(p: argparse.ArgumentParser) -> None:
    """``--min-face`` and ``--unfitted``: how hard faces are looked for, and what becomes
    of one found where no landmarks could be fitted."""
    from studio.core.analysis.search_settings import UNFITTED_POLICIES

    add_min_face(p)
    p.add_argument("--unfitted", choices=UNFITTED_POLICIES, default=UNFITTED_POLICIES[0],
                   help="a face of 24 px or more that was found but could not be fitted is "
                        "covered with a solid mask (default, the safer) or blurred")


def add_ray(p: argparse.ArgumentParser) -> None:
    """``--ray [ADDRESS]``; with ``add_workers(p, default=None)``, so that the local Ray's
    size can default to every core while the plain run keeps ``WORKERS``."""
    p.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                   help="run the photos as a Ray Data pipeline: on a Ray started on this "
                        "machine (--workers CPUs, default all), or on the cluster at "
                        "ADDRESS (e.g. auto, ray://head:10001; give it as --ray=ADDRESS or "
                        "after the inputs); needs the ray extra (pip install .[ray])")


def ray_options(args: argparse.Namespace) -> tuple[str | None, int]:
    """``--ray``'s address (None: the plain run) and the workers, Ray checked to be there
    before anything is written. The plain run's workers default to ``WORKERS``; a Ray
    run's to 0, meaning every CPU Ray has."""
    from studio.core.errors import StudioError

    workers = args.workers
    if args.ray in (None, "local"):
        _too_many_here(workers)
    if args.ray is None:
        return None, max(1, WORKERS if workers is None else workers)
    if args.ray != "local" and os.path.exists(args.ray):
        raise StudioError(f"--ray took {args.ray!r} for the address of a Ray cluster; write "
                          "--ray after the inputs, or --ray=ADDRESS")
    from studio.core.surrogates.scale import check_reachable, import_ray

    import_ray()
    if args.ray != "local":
        check_reachable(args.ray)  # before any work: Ray would retry a dead address forever
    return args.ray, max(0, workers or 0)


def add_seed(p: argparse.ArgumentParser, default: int | None = 0,
             help: str | None = None) -> None:
    p.add_argument("--seed", type=int, default=default, help=help)


def add_labels(p: argparse.ArgumentParser) -> None:
    p.add_argument("--labels", default=str(LABELS), help="label cache (by image hash)")


def _in_range(spec) -> Callable[[str], float]:
    """``type=`` for an attribute's flag: a number within the spec's range (NaN refused)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not spec.low <= value <= spec.high:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a {spec.label.lower()} from {spec.low:g} to {spec.high:g}")
        return value

    return parse


def add_attribute_flags(p: argparse.ArgumentParser) -> None:
    """``--joy --male --yaw --pitch --roll``: one flag per attribute of the one spec, each
    refused outside the spec's range."""
    from studio.core.analysis.attributes import SPECS

    for s in SPECS:
        p.add_argument(f"--{s.flag}", dest=s.name, metavar=s.flag.upper(), type=_in_range(s),
                       default=s.default, help=f"{s.help} ({s.low:g} to {s.high:g})")


def available_memory() -> int | None:
    """Bytes of memory free for a new allocation (Linux's MemAvailable), None if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def attributes_from(args: argparse.Namespace) -> Attributes:
    """The attributes the flags of ``add_attribute_flags`` asked for."""
    from studio.core.analysis.attributes import SPECS, Attributes

    return Attributes(**{s.name: getattr(args, s.name) for s in SPECS})


def literal(text: str) -> str:
    """Outside text (a method's label: "σ 5% of face width") as argparse help, which
    formats ``%``."""
    return text.replace("%", "%%")


def split_list(text: str) -> list[str]:
    """``"a, b,"`` -> ``["a", "b"]``: a comma-separated option as a list."""
    return [item.strip() for item in text.split(",") if item.strip()]


def data_present() -> bool:
    """True when the research data is there; otherwise says where it was looked for."""
    from studio.core.datasets import data_available, data_root

    if not data_available():
        print(f"error: the research data is not at {data_root()} (set STUDIO_DATA).",
              file=sys.stderr)
    return data_available()


class TqdmProgress:
    """The core's ``progress(done, total, message)`` drawn as tqdm bars.

    The stage is the text of ``message`` before its first ": "; a new bar starts whenever
    the stage or the total changes (or ``done`` goes back), and the text after ": " is the
    bar's postfix. Use it as a context manager so that the last bar is closed.
    """

    def __init__(self, file=None, **tqdm_options) -> None:
        self.file = file
        self.options = tqdm_options
        self.bar = None
        self._key: tuple[str, int] | None = None

    def __call__(self, done: int, total: int, message: str) -> None:
        stage, _, detail = message.partition(": ")
        if self.bar is None or self._key != (stage, total) or done < self.bar.n:
            self._start(stage, total)
        if detail:
            self.bar.set_postfix_str(detail, refresh=False)
        if done > self.bar.n:
            self.bar.update(done - self.bar.n)
        elif detail:
            self.bar.refresh()

    def _start(self, stage: str, total: int) -> None:
        from tqdm import tqdm

        self.close()
        self.bar = tqdm(total=total or None, desc=stage, file=self.file, **self.options)
        self._key = (stage, total)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        self.bar = None
        self._key = None

    def __enter__(self) -> TqdmProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def progress_for(args: argparse.Namespace) -> Iterator[Progress | None]:
    """Bars on stderr, or ``None`` with ``--quiet``; the bars are closed on the way out."""
    if args.quiet:
        yield None
        return
    with TqdmProgress() as progress:
        yield progress


@contextmanager
def stop_on_term() -> Iterator[Callable[[], bool]]:
    """A ``stop()`` that turns true on SIGTERM (``kill``, a CI timeout), so that a
    background training run stops at the end of its step and saves, instead of dying
    between checkpoints; the previous handler is restored on the way out."""
    import signal

    asked: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, _frame: asked.append(signum))
    try:
        yield lambda: bool(asked)
    finally:
        signal.signal(signal.SIGTERM, previous)
