"""``studio refiner-pairs`` and ``train-refiner``: the learned last step of the in-context
surrogate (issue 27), made from the studio's own fits of the training split."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from studio.cli.options import add_quiet, data_present, progress_for, stop_on_term

PAIRS = Path(".cache/refiner/pairs")
PREVIEW = Path(".cache/refiner/preview")
DRAWS = Path(".cache/refiner/draws")


@dataclass(frozen=True)
class Tuning:
    """One option of train-refiner that sets a field of ``RefinerSettings`` of the same
    name (None when not given: the settings' default stands). ``kind``: float or int
    (a value), "on" (a flag that sets True) or "off" (a flag that sets False)."""

    flag: str
    field: str
    kind: type | str
    metavar: str
    help: str

    def add_to(self, p: argparse.ArgumentParser) -> None:
        if self.kind in ("on", "off"):
            p.add_argument(self.flag, dest=self.field, default=None, help=self.help,
                           action="store_true" if self.kind == "on" else "store_false")
        else:
            p.add_argument(self.flag, dest=self.field, type=self.kind, default=None,
                           metavar=self.metavar, help=self.help)


#: The training's tuning options, each declared once: its flag, the settings field it
#: sets and what it does (all off or at the settings' defaults unless given).
TUNING = (
    Tuning("--d-lr", "d_lr", float, "RATE",
           "the critics' learning rate (default the training settings' 2e-4)"),
    Tuning("--parts", "parts", float, "WEIGHT", "weight of the eye and mouth critics "
           "(default 0: off; tried at 1 in models/refiner/README.md)"),
    Tuning("--plain-parts", "parts_sn", "off", "",
           "no spectral norm in the eye and mouth critics"),
    Tuning("--l1", "l1", float, "WEIGHT",
           "weight of L1 to the photo against the critic (default 10)"),
    Tuning("--l1-pool", "l1_pool", int, "K", "the L1 on crops average-pooled K times "
           "(default 1: per pixel); the fine detail is then left to the critic"),
    Tuning("--whole-face", "whole_face", float, "WEIGHT", "weight of a critic of the whole "
           "face shrunk to 32 px (its structure; default 0: off)"),
    Tuning("--d-steps", "d_steps", int, "N", "critic steps per refiner step (default 1)"),
    Tuning("--face-weighted", "face_weighted", "on", "", "average the critic's hinge over "
           "the face's patches only (outside the mask the refined crop is the photo)"),
    Tuning("--plain-critic", "critic_sn", "off", "", "no spectral norm in the whole-crop "
           "critic (one with it stayed at chance; a state's critic of the other kind "
           "starts fresh)"),
    Tuning("--guide-blur", "guide_blur", float, "SHARE", "give the render as a guide only: "
           "the face blurred by this share of the crop's side "
           "(studio.core.refiner.guide; default 0: off)"),
    Tuning("--guide-tint", "guide_tint", float, "GREYS", "a random smooth tint of this "
           "many grey levels on the guide in training (default 0: off)"),
    Tuning("--drop-glasses", "drop_glasses", float, "SHARE", "leave out this share of "
           "pairs, those most likely wearing glasses (studio.core.refiner.glasses; "
           "default 0)"),
    Tuning("--draws-anchor", "draws_anchor", float, "WEIGHT", "with --draws: L1 between a "
           "refined draw and its composite (default 0; without it the draws drifted to "
           "high contrast)"),
)
#: ``--draws-for``'s choices and the settings field each sets.
DRAWS_FOR = {"critic": "critic_on_draws", "whole-face": "whole_face_on_draws",
             "parts": "parts_on_draws"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("refiner-pairs",
                       help="make the refiner's training pairs (own-fit composite, photo) "
                            "from UTKFace's training split")
    p.add_argument("--out", default=None, help=f"shard folder (default {PAIRS})")
    p.add_argument("--limit", type=int, default=None, help="photos to use (default: all)")
    p.add_argument("--new-draws", action="store_true",
                   help="composites of new identities, made as at use, for the critic "
                        f"(train-refiner --draws); default folder {DRAWS}")
    p.add_argument("--preview", default=str(PREVIEW),
                   help="also a shard of 16 held-out pairs here, for the preview grid only")
    add_quiet(p)
    p.set_defaults(func=cmd_refiner_pairs)

    p = sub.add_parser("train-refiner", help="train the refiner on pairs from refiner-pairs")
    p.add_argument("--pairs", default=str(PAIRS))
    p.add_argument("--draws", default=None, metavar="FOLDER",
                   help="new-draw composites (refiner-pairs --new-draws): the critic's fakes "
                        "are these refined, so the adversarial loss trains the refiner on "
                        "what it meets at use (default: off)")
    p.add_argument("--draws-for", choices=tuple(DRAWS_FOR), default="critic",
                   help="with --draws: the critic whose fakes they are (the whole-crop "
                        "critic, the --whole-face one or the --parts ones; default critic)")
    p.add_argument("--preview", default=str(PREVIEW))
    p.add_argument("--out", default="runs/refiner", help="run folder (state, log, preview)")
    p.add_argument("--minutes", type=float, default=60.0)
    p.add_argument("--resume", action="store_true", help="continue from OUT/state.safetensors")
    p.add_argument("--init-from", default=None, metavar="STATE",
                   help="start from a carried-over state (networks and optimisers)")
    p.add_argument("--carry-to", default=None, metavar="STATE",
                   help="also write both networks here (no optimiser: small enough to "
                        "commit), to --init-from in a later session")
    p.add_argument("--export", default=None, metavar="WEIGHTS",
                   help="write the refiner alone (float16) here, with its training manifest")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=2e-4)
    for option in TUNING:
        option.add_to(p)
    p.add_argument("--threads", type=int, default=1,
                   help="CPU threads (one while anything else runs: two under load were "
                        "3x slower here)")
    add_quiet(p)
    p.set_defaults(func=cmd_train_refiner)


def cmd_refiner_pairs(args: argparse.Namespace) -> int:
    import torch

    from studio.core.datasets import utk_split, utkface
    from studio.core.surrogates.refine_pairs import training_photos, write_shards

    if not data_present():
        return 2
    torch.set_num_threads(1)
    paths = training_photos()[:args.limit]
    out = Path(args.out or (DRAWS if args.new_draws else PAIRS))
    with progress_for(args) as progress, stop_on_term() as stop:
        if args.preview and not args.new_draws:
            held_out = [it.path for it in utk_split(utkface(), "test")][:16]
            write_shards(Path(args.preview), held_out, progress=progress)
        n = write_shards(out, paths, progress=progress, stop=stop, own_fit=not args.new_draws)
    print(f"{n} new {'draws' if args.new_draws else 'pairs'} -> {out}")
    return 0


def cmd_train_refiner(args: argparse.Namespace) -> int:
    import torch

    from studio.core.datasets import ManifestEntry, TrainingManifest, manifest_path
    from studio.core.errors import StudioError
    from studio.core.refiner.pair_set import PairSet
    from studio.core.refiner.training import RefinerSettings, RefinerTrainer

    torch.set_num_threads(max(1, args.threads))
    pairs = PairSet(Path(args.pairs))
    if not len(pairs):
        raise StudioError(f"no pairs in {args.pairs}: run studio refiner-pairs first")
    preview = PairSet(Path(args.preview)) if Path(args.preview).is_dir() else None
    draws = PairSet(Path(args.draws)) if args.draws else None
    if draws is not None and not len(draws):
        raise StudioError(f"no draws in {args.draws}: run studio refiner-pairs --new-draws")
    chosen = {t.field: getattr(args, t.field) for t in TUNING}
    if args.draws:
        chosen.update({field: args.draws_for == name for name, field in DRAWS_FOR.items()})
    given = {k: v for k, v in chosen.items() if v is not None}
    trainer = RefinerTrainer(Path(args.out),
                             settings=RefinerSettings(batch=args.batch, lr=args.lr,
                                                     **given))
    if args.resume and trainer.state_path.is_file():
        trainer.load_state()
        print(f"resumed at step {trainer.step} ({trainer.seconds / 3600:.2f} h trained)")
    elif trainer.state_path.is_file():
        raise StudioError(f"{trainer.state_path} exists; pass --resume or choose another --out")
    elif args.init_from:
        trainer.load_state(Path(args.init_from))
        print(f"started from {args.init_from} at step {trainer.step}")
    with progress_for(args) as progress, stop_on_term() as stop:
        trainer.run(pairs, args.minutes, preview, progress=progress, stop=stop, draws=draws)
    print(f"step {trainer.step}, {trainer.seconds / 3600:.2f} h trained, {len(pairs)} pairs")
    # The photos the pairs were made from, by their hashes (the shards hold them).
    manifest = TrainingManifest("refiner", [ManifestEntry(s, "utkface", None)
                                            for s in sorted(set(pairs.sha256))])
    for target in filter(None, (args.carry_to, args.export)):
        path = Path(target)
        if target == args.carry_to:
            trainer.save_state(path, optimisers=False)
        else:
            trainer.export_weights(path, len(pairs))
        old = manifest_path(path)
        merged = TrainingManifest.load(old).merged(manifest) if old.is_file() else manifest
        merged.save(old)
        print(f"-> {path} ({path.stat().st_size / 1e6:.1f} MB) and its training manifest")
    return 0
