"""The face sets an evaluation reads: GENKI-4K, celeba-id and UTKFace by their layout,
or any folder of photos; ``limit`` spreads over a set and never splits a person. Each
photo is marked with the shipped models whose training manifests hold it or its person."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from studio.core.analysis.images import list_images
from studio.core.assets import sha256_of
from studio.core.errors import StudioError


@dataclass(frozen=True)
class Source:
    path: Path
    name: str  # shown in the per-face CSV: relative to the data folder
    identity: str
    truth: dict[str, float] = field(default_factory=dict)  # smile, yaw, pitch, roll, male
    seen_by: tuple[str, ...] = ()  # models whose training manifest holds this photo or person


@dataclass(frozen=True)
class Dataset:
    name: str
    kind: str  # genki4k-test | celeba-id | utkface-holdout | folder
    sources: list[Source]
    identities_known: bool  # False: every image is taken to be its own person
    checked: tuple[str, ...] = ()  # the models whose training manifests were checked
    unchecked: tuple[str, ...] = ()  # shipped models without a manifest

    def seen(self) -> dict[str, tuple[int, int]]:
        """Model -> (photos, people) of this set it saw in training, for every model checked."""
        out = {}
        for model in self.checked:
            hit = [s for s in self.sources if model in s.seen_by]
            out[model] = (len(hit), len({s.identity for s in hit}))
        return out

    def provenance(self) -> str:
        """One sentence for the report: which models saw this set's photos and people."""
        people = len({s.identity for s in self.sources})
        what = f"{self.name} ({len(self.sources):,} photos"
        what += f", {people:,} people)" if self.identities_known else ")"
        if not self.checked:
            return f"{what}: no training manifests found, so which models saw it is unknown."
        seen = {m: n for m, n in self.seen().items() if n[0]}
        parts = []
        for model, (photos, persons) in seen.items():
            share = "all" if photos == len(self.sources) else f"{photos:,} of {len(self.sources):,}"
            if self.identities_known:
                share = ("all" if persons == people else f"{persons:,} of {people:,}") + \
                    f" of the people, {photos:,} photos"
            parts.append(f"the {model} ({share})")
        unseen = [m for m in self.checked if m not in seen]
        text = f"{what}: seen in training by " + ("; ".join(parts) if parts else "none of the "
                                                 f"models ({', '.join(self.checked)})")
        if parts and unseen:
            text += f"; by none of the other models ({', '.join(unseen)})"
        if self.unchecked:
            text += f"; no manifest for {', '.join(self.unchecked)}"
        return text + "."


def discover(folder: str | Path, limit: int | None = None) -> Dataset:
    """The face sets of ``../shared/data`` by their layout, or any folder of photos.

    GENKI-4K gives its test split with smile and pose labels, UTKFace its hold-out split
    with gender, celeba-id its identities. In another folder, photos in sub-folders belong
    to the person the sub-folder is named after; loose photos are each their own person.
    """
    root = Path(folder)
    if not root.is_dir():
        raise StudioError(f"{root} is not a folder")
    if (root / "labels.txt").is_file() and (root / "test_split.txt").is_file():
        dataset = _genki(root)
    elif (root / "identity.txt").is_file():
        dataset = _celeba(root)
    elif root.name == "utkface" and (root / "images").is_dir():
        dataset = _utkface(root)
    else:
        dataset = _folder(root)
    if limit is not None and limit < len(dataset.sources):
        dataset = Dataset(dataset.name, dataset.kind, spread(dataset.sources, limit),
                          dataset.identities_known)
    return mark_seen(dataset)


def mark_seen(dataset: Dataset, manifests: dict | None = None) -> Dataset:
    """The set with each photo's ``seen_by``: the models whose manifest holds its bytes
    (any set) or its person (celeba-id). ``manifests``: model -> manifest or None
    (default: the shipped models', loaded once)."""
    from studio.core.evaluation.provenance import shipped_manifests

    manifests = shipped_manifests() if manifests is None else manifests
    checked = {m: t for m, t in manifests.items() if t is not None}
    marked = []
    for s in dataset.sources:
        try:
            digest = sha256_of(s.path)
        except OSError:  # unreadable now: the study reports it; nothing to match
            digest = ""
        seen = tuple(m for m, t in checked.items() if t.contains_image(digest) or (
            dataset.kind == "celeba-id" and t.contains_identity("celeba-id", s.identity)))
        marked.append(replace(s, seen_by=seen))
    return replace(dataset, sources=marked, checked=tuple(checked),
                   unchecked=tuple(m for m, t in manifests.items() if t is None))


def _genki(root: Path) -> Dataset:
    from studio.core.datasets import genki

    return Dataset("GENKI-4K test", "genki4k-test", [
        Source(it.path, f"{root.name}/{it.path.name}", it.stem,
               {"smile": it.smile, "yaw": it.yaw, "pitch": it.pitch, "roll": it.roll})
        for it in genki("test", root)], False)


def _celeba(root: Path) -> Dataset:
    """The test identities only: the other half is for training (``celeba_split``)."""
    from studio.core.datasets import celeba_id, celeba_split

    return Dataset("celeba-id", "celeba-id", [
        Source(it.path, f"{root.name}/{it.path.name}", str(it.identity))
        for it in celeba_split(celeba_id(root), "test")], True)


def _utkface(root: Path) -> Dataset:
    from studio.core.datasets import utk_split, utkface

    return Dataset("UTKFace hold-out", "utkface-holdout", [
        Source(it.path, f"{root.name}/{it.path.name}", it.path.name, {"male": float(it.male)})
        for it in utk_split(utkface(root), "test")], False)


def _folder(root: Path) -> Dataset:
    paths = list_images(root)
    if not paths:
        raise StudioError(f"{root} holds no photos the studio can read")
    sources = [Source(p, str(p.relative_to(root)),
                      p.parent.name if p.parent != root else str(p.relative_to(root)))
               for p in paths]
    return Dataset(root.name, "folder", sources, any(p.parent != root for p in paths))


def spread(sources: list[Source], limit: int) -> list[Source]:
    """At most ``limit`` sources spread over the whole list, whole identities kept
    together (the attacks need every image of a person)."""
    by_identity: dict[str, list[Source]] = {}
    for s in sources:
        by_identity.setdefault(s.identity, []).append(s)
    step = max(1.0, len(sources) / max(limit, 1))
    picked: list[Source] = []
    taken, next_at = 0, 0.0
    for group in by_identity.values():
        if taken >= next_at and len(picked) + len(group) <= limit:
            picked.extend(group)
            next_at += step * len(group)
        taken += len(group)
    return picked
