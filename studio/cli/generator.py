"""``studio train``, ``generate``, ``interpolate``, ``evaluate-generator`` and
``generator-report``: the conditional face generator."""

from __future__ import annotations

import argparse
import io
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from studio.cli.options import (
    CACHE,
    RUNS,
    add_attribute_flags,
    add_labels,
    add_quiet,
    add_seed,
    add_strict,
    add_weights,
    attributes_from,
    available_memory,
    data_present,
    progress_for,
    split_list,
    stop_on_term,
)
from studio.core.assets import write_atomic
from studio.core.errors import StudioError

if TYPE_CHECKING:
    from studio.core.analysis.attributes import Attributes
    from studio.core.generator.dataset_export import ExportResult


def register(sub: argparse._SubParsersAction) -> None:
    _add_train(sub)
    _add_generate(sub)
    _add_interpolate(sub)
    p = sub.add_parser("evaluate-generator", help="measure the generator on held-out labels")
    add_weights(p)
    add_labels(p)
    p.add_argument("-n", type=int, default=1000, help="samples for control (labels drawn "
                                                      "from held-out faces)")
    p.add_argument("--realism-faces", type=int, default=400,
                   help="held-out faces drawn from their own labels for the realism rows "
                        "(C2ST, KID, HOG), smile agreement per joy bin and the 7-class judge")
    p.add_argument("--privacy-faces", type=int, default=None, help="GENKI-4K test faces (all)")
    p.add_argument("--training-reference", type=int, default=3000,
                   help="training faces to search for the nearest one")
    add_strict(p)
    add_quiet(p)
    p.set_defaults(func=cmd_evaluate_generator)

    p = sub.add_parser("generator-report", help="sample/interpolation grids and the M plot")
    add_weights(p)
    p.add_argument("--log", default=str(RUNS / "log.csv"))
    p.add_argument("--out", default="models/generator")
    p.set_defaults(func=cmd_generator_report)


def _add_device(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (or cuda:N)")


def _add_train(sub: argparse._SubParsersAction) -> None:
    from studio.core.generator.objectives import OBJECTIVES

    p = sub.add_parser("train", help="train the conditional generator")
    p.add_argument("--out", default=str(RUNS), help="checkpoints, log.csv, sample grids")
    p.add_argument("--data", default=str(CACHE / "train64.npz"),
                   help="training crops (built if absent)")
    add_labels(p)
    p.add_argument("--minutes", type=float, default=60.0, help="time budget for this run")
    p.add_argument("--resume", action="store_true", help="continue from OUT/state.pt")
    p.add_argument("--carry-to", default=None, metavar="WEIGHTS",
                   help="when the run stops, also write G, its EMA and D (fp16) there for "
                        "--init-from in a later session (small enough to commit; the full "
                        "state.pt is not); with --minutes 0 and --resume, just that")
    p.add_argument("--init-from", default=None, metavar="WEIGHTS",
                   help="warm-start G, its EMA and D from a file `Trainer.export_weights` "
                        "wrote (a run carried over from another session)")
    p.add_argument("--legacy", action="store_true",
                   help="train as the shipped thesis weights were (BEGAN-CS; no EMA, k floor, "
                        "DiffAugment or smooth resampling); pass it too when resuming such a run")
    _add_settings_flags(p)
    widths = ", ".join(f"{o.base_channels} for {k}" for k, o in OBJECTIVES.items())
    p.add_argument("--channels", type=int, default=None,
                   help=f"base channel count of the networks (default {widths})")
    _add_device(p)
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch default)")
    p.add_argument("--grid-every", type=float, default=300.0, help="seconds between grids")
    add_quiet(p)
    p.set_defaults(func=cmd_train)


def _add_generate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "generate", help="draw faces with given attributes into a grid PNG or a data set",
        description="Draws faces with the attributes of the flags: a contact sheet (-o), or "
        "with --out-dir one PNG per face at the model's native size plus labels.csv (file, "
        "seed and attributes of each face). A row regenerates its file exactly: "
        "`studio generate --seed SEED --joy JOY ... -n 1 --out-dir NEW`. Exit 2 on bad "
        "usage or a non-empty --out-dir.")
    add_attribute_flags(p)
    p.add_argument("-n", type=int, default=16, help="number of faces")
    add_seed(p, default=None, help="default: random; with --out-dir face i has seed SEED + i")
    p.add_argument("--size", type=int, default=None,
                   help="pixels per face in the grid (default 128); --out-dir files keep the "
                        "model's native size")
    add_weights(p)
    _add_device(p)
    where = p.add_mutually_exclusive_group()
    where.add_argument("-o", "--output", default="grid.png", help="the grid PNG (grid.png)")
    where.add_argument("--out-dir", default=None, metavar="DIR",
                       help="write N PNGs and labels.csv into DIR (new or empty; made if "
                            "missing)")
    p.add_argument("--vary", nargs="?", const="all", default=None, metavar="NAMES",
                   help="with --out-dir: draw each face's labels uniformly over each "
                        "attribute's range (seeded by the face's seed) instead of the flags' "
                        "one label set; NAMES limits it, e.g. joy,male,yaw (default: all; "
                        "pitch and roll over all of +-45 go past GENKI-4K's labels)")
    p.add_argument("--batch", type=int, default=None,
                   help="with --out-dir: faces drawn at a time (bounds memory)")
    add_quiet(p)
    p.set_defaults(func=cmd_generate)


def _add_interpolate(sub: argparse._SubParsersAction) -> None:
    from studio.core.analysis.attributes import NAMES

    p = sub.add_parser("interpolate", help="filmstrip and GIF of a latent or attribute walk")
    add_seed(p, default=1, help="identity (start of the walk)")
    p.add_argument("--seed-b", type=int, default=2, help="identity at the end of the walk")
    p.add_argument("--mode", choices=("slerp", "linear"), default="slerp")
    p.add_argument("--along", choices=NAMES, default=None,
                   help="walk one attribute at a fixed identity instead")
    p.add_argument("--start", type=float, default=0.0, help="attribute value at the start")
    p.add_argument("--stop", type=float, default=1.0, help="attribute value at the end")
    p.add_argument("--steps", type=int, default=9)
    add_attribute_flags(p)
    p.add_argument("--size", type=int, default=128, help="pixels per frame in the filmstrip")
    p.add_argument("-o", "--output", default="walk.png", help="filmstrip PNG")
    p.add_argument("--gif", default=None, help="also write an animated GIF here")
    p.add_argument("--fps", type=float, default=12)
    add_weights(p)
    p.set_defaults(func=cmd_interpolate)


def _training_set(args: argparse.Namespace):
    from studio.core.generator.training_data import TrainingSet, build_training_set

    data_path = Path(args.data)
    if not data_path.is_file():
        print(f"building the training set into {data_path} (labels cached in {args.labels})")
        with progress_for(args) as progress:
            build_training_set(Path(args.labels), progress=progress).save(data_path)
    data = TrainingSet.load(data_path)
    print(f"{len(data.labels)} training crops: {data.counts}")
    return data


def _add_settings_flags(p: argparse.ArgumentParser) -> None:
    """One flag per ``TrainSettings`` field that offers one: its name, type, default and
    help come from the field, so the command line cannot disagree with the settings."""
    from studio.core.generator.settings import flag_fields, flag_type, objective_defaults

    for f in flag_fields():
        meta = f.metadata
        flag = meta["flag"] or "--" + f.name.replace("_", "-")
        kind = flag_type(f)
        if kind is bool:
            p.add_argument(flag, dest=f.name, default=f.default, help=meta["help"],
                           action="store_false" if f.default else "store_true")
            continue
        per = objective_defaults(f.name)
        default = (", ".join(f"{v:g} for {k}" for k, v in per.items()) if per
                   else f"{f.default:g}" if kind is float else str(f.default))
        p.add_argument(flag, dest=f.name, type=kind, default=f.default,
                       metavar=meta["metavar"], choices=meta["choices"],
                       help=f"{meta['help']} (default {default})")


def _settings(args: argparse.Namespace):
    """The run's ``TrainSettings`` from the flags; ``--legacy`` trains the thesis's BEGAN-CS
    as the shipped thesis weights were trained, whatever ``--objective`` says."""
    from studio.core.generator.networks import BeganConfig
    from studio.core.generator.settings import TrainSettings, flag_fields, new_run_config

    values = {f.name: getattr(args, f.name) for f in flag_fields()}
    if args.legacy:
        values.pop("objective")
        config = BeganConfig(base_channels=args.channels) if args.channels else None
        return TrainSettings.legacy(config=config, **values)
    # issue 16's levers: smooth resampling, EMA, DiffAugment (and BEGAN's k floor)
    config = new_run_config(base_channels=args.channels) if args.channels else None
    return TrainSettings(config=config, **values)


def _trainer(args: argparse.Namespace, data):
    import torch

    from studio.core.generator.sampler import pick_device
    from studio.core.generator.training import Trainer

    torch.set_num_threads(args.threads or torch.get_num_threads())
    return Trainer(data, Path(args.out), _settings(args), pick_device(args.device))


def cmd_train(args: argparse.Namespace) -> int:
    from studio.core.datasets import manifest_path

    data = _training_set(args)
    trainer = _trainer(args, data)
    if args.resume and trainer.state_path.is_file():
        trainer.load_state()
        print(f"resumed at step {trainer.step} ({trainer.seconds / 3600:.2f} h trained)")
    elif trainer.state_path.is_file() and not args.resume:
        print(f"error: {trainer.state_path} exists; pass --resume or choose another --out",
              file=sys.stderr)
        return 2
    elif args.init_from:
        trainer.warm_start(Path(args.init_from))
        print(f"warm start from {args.init_from} at step {trainer.step}")
    weights = Path(args.out) / "generator.safetensors"
    if data.manifest is None:
        print(f"note: {args.data} predates training manifests; delete it to rebuild it with one",
              file=sys.stderr)
    else:
        from studio.core.datasets import TrainingManifest

        manifest, where = data.manifest, manifest_path(weights)
        if args.resume and where.is_file():  # the weights keep what they saw before
            manifest = TrainingManifest.load(where).merged(manifest)
        manifest.save(where)
    with progress_for(args) as progress, stop_on_term() as stop:
        trainer.run(args.minutes, grid_every_s=args.grid_every, progress=progress, stop=stop)
    print(f"stopped at step {trainer.step}; weights in {weights}")
    if args.carry_to:
        carry = Path(args.carry_to)
        carry.parent.mkdir(parents=True, exist_ok=True)
        trainer.export_weights(carry)
        manifest = manifest_path(weights)
        if manifest.is_file():
            import shutil

            shutil.copyfile(manifest, manifest_path(carry))
        print(f"carry-over for a later session -> {carry} "
              f"({carry.stat().st_size / 1e6:.1f} MB) and its training manifest")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from studio.core.generator.sampler import Sampler
    from studio.core.generator.sheets import contact_sheet

    if args.out_dir is None and args.vary is not None:
        print("error: --vary draws labels for a data set; pass --out-dir too", file=sys.stderr)
        return 2
    if args.out_dir is not None and args.size is not None:
        print("error: --out-dir writes faces at the model's native size; --size is for the "
              "grid (-o)", file=sys.stderr)
        return 2
    if args.n < 1:
        raise StudioError(f"-n: at least 1 face, not {args.n}")
    if args.size is not None:
        _check_grid_size(args.n, args.size)
    gen = Sampler(args.weights, device=args.device)
    attrs = attributes_from(args)
    if args.out_dir is not None:
        from studio.core.generator.dataset_export import export_dataset

        with progress_for(args) as progress:
            done = export_dataset(gen, args.out_dir, args.n, attrs, seed=args.seed,
                                  vary=_vary_names(args.vary), batch=args.batch,
                                  progress=progress)
        print(_dataset_summary(done, attrs))
        return 0
    faces = gen.sample(attrs, seed=args.seed, n=args.n)
    out = Path(args.output)
    png = io.BytesIO()
    contact_sheet(faces, size=args.size or 128, gap=0).save(png, "PNG")  # no metadata
    write_atomic(out, png.getvalue())
    print(f"{len(faces)} faces ({attrs.to_dict()}) -> {out}")
    return 0


def _check_grid_size(n: int, size: int) -> None:
    """``--size`` refused, before any work, when under 1 px or when the grid (held as
    RGBA, then encoded) would not fit in the memory free now."""
    if size < 1:
        raise StudioError(f"--size: at least 1 pixel per face, not {size}")
    cols = math.ceil(math.sqrt(n))
    need = 2 * (cols * math.ceil(n / cols) + 1) * size * size * 4
    free = available_memory()
    if free is not None and need > free:
        raise StudioError(f"--size {size}: a grid of {n} faces of {size} px needs about "
                          f"{need / 2**30:.1f} GiB of memory and {free / 2**30:.1f} GiB is "
                          "free; choose a smaller --size or -n")


def _vary_names(text: str | None) -> tuple[str, ...]:
    """``--vary``'s attributes: none, all, or those listed (``male`` or ``p_male``)."""
    from studio.core.analysis.attributes import NAMES, SPECS

    if text is None:
        return ()
    if text == "all":
        return NAMES
    by_flag = {s.flag: s.name for s in SPECS}
    return tuple(by_flag.get(name, name) for name in split_list(text))


def _dataset_summary(done: ExportResult, attrs: Attributes) -> str:
    fixed = {k: v for k, v in attrs.to_dict().items() if k not in done.varied}
    labels = ", ".join(filter(None, (done.varied and f"{', '.join(done.varied)} drawn per face",
                                     fixed and str(fixed))))
    return (f"{done.count} faces of {done.size} px (seeds {done.seed}.."
            f"{done.seed + done.count - 1}; {labels}) -> {done.out_dir}, labels in "
            f"{done.labels.name}; {done.seconds:.1f} s")


def cmd_interpolate(args: argparse.Namespace) -> int:
    from PIL import Image

    from studio.core.generator import interpolation as walk
    from studio.core.generator.sampler import Sampler

    gen = Sampler(args.weights)
    labels = attributes_from(args)
    if args.along:
        frames = walk.along_attribute(gen, labels, args.seed, args.along, args.start, args.stop,
                                      args.steps)
        what = f"{args.along} {args.start:g} -> {args.stop:g} at seed {args.seed}"
    else:
        frames = walk.between_identities(gen, labels, args.seed, args.seed_b, args.steps,
                                         args.mode)
        what = f"seed {args.seed} -> {args.seed_b} ({args.mode})"
    out = Path(args.output)
    Image.fromarray(walk.filmstrip(frames, args.size)).save(out)
    print(f"{len(frames)} frames, {what} -> {out}")
    if args.gif:
        print(f"animation -> {walk.save_animation(frames, args.gif, fps=args.fps)}")
    return 0


def cmd_evaluate_generator(args: argparse.Namespace) -> int:
    from studio.core.analysis.analyzer import FaceAnalyzer
    from studio.core.evaluation.acceptance import format_table
    from studio.core.evaluation.check_generator import run_check
    from studio.core.evaluation.check_generator_realism import MIN_FACES
    from studio.core.generator.sampler import Sampler
    from studio.core.generator.training_data import read_cache_by_path

    if args.realism_faces < MIN_FACES:  # before the label cache is read, not after sampling
        print(f"error: --realism-faces must be at least {MIN_FACES}", file=sys.stderr)
        return 2
    if not data_present():
        return 2
    generator = Sampler(args.weights)
    with FaceAnalyzer() as analyzer, progress_for(args) as progress:
        records = read_cache_by_path(Path(args.labels), progress=progress)
        metrics = run_check(generator, analyzer, records, n=args.n,
                            privacy_faces=args.privacy_faces,
                            realism_faces=args.realism_faces,
                            training_reference=args.training_reference, progress=progress)
    print(f"generator {generator.path.name} (step {generator.metadata.get('step', '?')})")
    print(format_table(metrics))
    return 0 if all(m.passed for m in metrics) or not args.strict else 1


def cmd_generator_report(args: argparse.Namespace) -> int:
    from studio.core.generator.report import write_report
    from studio.core.generator.sampler import Sampler

    gen = Sampler(args.weights)
    log = Path(args.log) if args.log else None
    for path in write_report(gen, Path(args.out), log):
        print(path)
    return 0
