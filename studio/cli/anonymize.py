"""``studio anonymize``: every face of photos or folders replaced, one PNG per photo."""

from __future__ import annotations

import argparse
import sys

from studio.cli.options import (
    add_face_search,
    add_quiet,
    add_ray,
    add_seed,
    add_workers,
    literal,
    progress_for,
    ray_options,
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "anonymize", help="replace every face of photos or folders (one PNG per photo)",
        description="Writes one PNG per photo, at its resolution and with no metadata, with "
        "every face replaced. Originals are only read and no file is ever overwritten. "
        "Every face found leaves changed: replaced, or blurred (under 24 px) or masked "
        "where no landmarks could be fitted. Exit 1 when some photo was skipped (its "
        "output exists), unreadable or face-less, or had a face the method left unchanged "
        "(each is listed), 2 on bad usage.")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="photos or folders (searched recursively)")
    p.add_argument("-o", "--out", dest="out_dir", required=True, metavar="OUT_DIR",
                   help="folder for the anonymised photos (made if missing); outputs keep "
                        "the inputs' relative paths and stems, as .png")
    from studio.core.surrogates.registry import DEFAULT_ANONYMIZE, REGISTRY

    p.add_argument("--method", default=DEFAULT_ANONYMIZE,
                   help=literal("; ".join(
                       f"{name}: {REGISTRY.for_anonymize(name).label}"
                       + (" (default)" if name == DEFAULT_ANONYMIZE else "")
                       for name in REGISTRY.anonymize_choices())))
    add_seed(p, default=None, help="the new identities' seed (default: random); the same "
                                   "seed and photo give the same faces")
    p.add_argument("--context", default=None,
                   help="methods that replace inside the photo: keep (default) the hair, "
                        "ears and background, or "
                        "blur them")
    from studio.core.surrogates.privacy import DEFAULT_PRIVACY, PRIVACY_PRESETS

    p.add_argument("--privacy", default=None,
                   help=literal("; ".join(f"{name}: {preset.summary}" + (
                       " (default)" if name == DEFAULT_PRIVACY else "")
                       for name, preset in PRIVACY_PRESETS.items())
                       + ". docs/privacy.md says what each protects against and what not; "
                       "methods that replace inside the photo only"))
    p.add_argument("--neutral-names", action="store_true",
                   help="random output names; which came from which original goes to a "
                        "private mapping outside OUT_DIR")
    p.add_argument("--mapping", default=None,
                   help="with --neutral-names: the private mapping (default: "
                        "OUT_DIR.private-mapping.csv beside OUT_DIR; never inside it)")
    add_face_search(p)
    add_workers(p, help="photos in flight (default 2; with --ray, every CPU)", default=None,
                cluster=True)
    add_ray(p)
    add_quiet(p)
    p.set_defaults(func=cmd_anonymize)


def cmd_anonymize(args: argparse.Namespace) -> int:
    from studio.core.surrogates.anonymize import anonymize

    address, workers = ray_options(args)
    with progress_for(args) as progress:
        report = anonymize(args.inputs, args.out_dir, method=args.method, seed=args.seed,
                           context=args.context, neutral_names=args.neutral_names,
                           mapping=args.mapping, progress=progress, workers=workers,
                           ray=address, unfitted=args.unfitted, min_face=args.min_face,
                           privacy=args.privacy)
    for message in report.messages:
        print(f"  {message}", file=sys.stderr)
    unhandled = (f"; {report.faces_unhandled} left unchanged by the method and masked"
                 if report.faces_unhandled else "")
    print(f"{len(report.written)} photos written to {report.out_dir} "
          f"({report.faces_found} faces found: {report.faces_replaced} replaced by "
          f"{report.method}, {report.faces_blurred} blurred, {report.faces_masked} masked"
          f"{unhandled}); "
          f"{len(report.skipped_existing)} skipped (output exists, not overwritten), "
          f"{len(report.no_face)} without a face, "
          f"{len(report.unreadable) + len(report.failed)} unreadable; "
          f"{report.seconds:.1f} s")
    if report.mapping is not None:
        print(f"private mapping (keep it apart from the photos) -> {report.mapping}")
    return 1 if report.inputs_failed else 0
