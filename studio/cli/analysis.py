"""``studio analyze``, ``calibrate`` and ``evaluate-analysis``: the face analysis."""

from __future__ import annotations

import argparse
import json
import sys

from studio.cli.options import add_quiet, add_strict, data_present, progress_for
from studio.core.analysis.images import SUPPORTED_NAMES
from studio.core.errors import StudioError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("analyze", help="landmarks, attributes and identity of every face")
    p.add_argument("images", nargs="*", help=f"image files ({SUPPORTED_NAMES})")
    p.add_argument("--demo", action="store_true", help="also analyse the built-in demo face")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--landmarks", action="store_true", help="include the 478 landmarks in JSON")
    p.add_argument("--no-identity", action="store_true", help="skip the identity descriptor")
    p.set_defaults(func=cmd_analyze)

    p = sub.add_parser("calibrate", help="refit joy and pose calibration on GENKI-4K train")
    add_quiet(p)
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("evaluate-analysis", help="measure the analysis on held-out data")
    p.add_argument("--limit", type=int, default=None, help="GENKI-4K test images (all 1,200)")
    p.add_argument("--gender-images", type=int, default=2000)
    p.add_argument("--identities", type=int, default=None,
                   help="celeba-id identities with 2+ images to pair (all 1,454)")
    add_strict(p)
    add_quiet(p)
    p.set_defaults(func=cmd_evaluate_analysis)


def _demo_image():
    """scikit-image's astronaut (public domain), loaded from the installed package."""
    from skimage import data

    return data.astronaut()


def _print_analysis(result, out) -> None:
    n = len(result.faces)
    print(f"{result.source}  {result.width}x{result.height}  {n} face{'s' if n != 1 else ''}",
          file=out)
    for note in result.notes:
        print(f"  note: {note}", file=out)
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


def _record(result, landmarks: bool) -> dict:
    return {
        "source": result.source, "width": result.width, "height": result.height,
        "faces": [f.to_dict(landmarks=landmarks) for f in result.faces],
        "notes": list(result.notes),
        "timings_ms": {k: round(v, 2) for k, v in result.timings_ms.items()},
    }


def _analyze_one(analyzer, src, args: argparse.Namespace, records: list) -> bool:
    """Analyse one source, print or collect it; False when it failed or showed no face."""
    try:
        if src is None:
            result = analyzer.analyze(_demo_image(), source="demo:astronaut")
        else:
            result = analyzer.analyze_path(src)
    except StudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        records.append({"source": str(src), "error": str(exc)})
        return False
    if not result.faces:
        print(f"error: {result.source}: no face found in the image.", file=sys.stderr)
    if args.json:
        for note in result.notes:  # in the record, and where a person reading sees it
            print(f"note: {result.source}: {note}", file=sys.stderr)
        records.append(_record(result, args.landmarks))
    else:
        _print_analysis(result, sys.stdout)
    return bool(result.faces)


def cmd_analyze(args: argparse.Namespace) -> int:
    from studio.core.analysis.analyzer import FaceAnalyzer

    sources = [*([None] if args.demo else []), *(args.images or [])]
    if not sources:
        print("error: give one or more image files, or --demo", file=sys.stderr)
        return 2
    records: list[dict] = []
    with FaceAnalyzer(identity=not args.no_identity) as analyzer:
        failures = sum(not _analyze_one(analyzer, src, args, records) for src in sources)
    if args.json:
        json.dump(records, sys.stdout, indent=1)
        print()
    return 1 if failures else 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from studio.core.analysis.calibration import CALIBRATION_FILE
    from studio.core.analysis.fit_calibration import fit
    from studio.core.datasets import manifest_path

    with progress_for(args) as progress:
        calibration = fit(progress=progress, manifest_to=manifest_path(CALIBRATION_FILE))
    calibration.save()
    print(json.dumps(calibration.info, indent=1))
    return 0


def cmd_evaluate_analysis(args: argparse.Namespace) -> int:
    from studio.core.analysis.analyzer import FaceAnalyzer
    from studio.core.evaluation.acceptance import format_table
    from studio.core.evaluation.check_analysis import run_check

    if not data_present():
        return 2
    with FaceAnalyzer() as analyzer, progress_for(args) as progress:
        metrics = run_check(analyzer, limit=args.limit, gender_images=args.gender_images,
                            identities=args.identities, progress=progress)
    print(format_table(metrics))
    return 0 if all(m.passed for m in metrics) or not args.strict else 1
