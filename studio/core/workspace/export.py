"""``studio export``: accepted surrogates as an annotation batch for crowd workers.

OUT_DIR gets only what workers may see: PNGs named by random item ids (no metadata, no
original pixels, no file names) and the task files. Which item came from which original,
method and seed goes to a separate private mapping file outside OUT_DIR, readable by its
owner only. The folder is written under a temporary name and renamed at the end, so a failed
export leaves nothing half-written, and an existing folder is never overwritten. Every place
written to is checked before the identity gate, which is the slow part.

An item shown twice (a repeat, or a gold item) is a fresh encoding of the same picture: a
worker must not spot repeats by comparing files.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit

import numpy as np
from PIL import Image

from studio.core.analysis.analyzer import FaceAnalysis
from studio.core.analysis.identity import SAME_PERSON_THRESHOLD
from studio.core.assets import (
    check_writable_dir,
    open_private,
    sha256_of,
    sync_folder,
    sync_tree,
)
from studio.core.crowd.formats import BASIC_EXPRESSIONS, MAPPING_COLUMNS
from studio.core.crowd.tables import csv_writer, dict_writer
from studio.core.errors import StudioError
from studio.core.metrics.comparison import another_person, compare, threshold2
from studio.core.surrogates.making import png_bytes
from studio.core.workspace.store import Candidate, FaceRecord, Workspace, face_analysis

FORMATS = ("mturk", "labelstudio")
BOTH = "both"  # --format both: every one of FORMATS
#: The crowd report's columns, then what lets the researcher find the original again.
MAPPING_FIELDS = [*MAPPING_COLUMNS, "candidate_id", "original_path", "face_index"]
#: MTurk's input CSV columns (the layout's ${...} variables) and the layout file.
MTURK_COLUMNS = ("image_url",)
MTURK_CSV, MTURK_LAYOUT = "mturk.csv", "mturk_layout.html"
LS_TASKS, LS_CONFIG = "labelstudio_tasks.json", "labelstudio_config.xml"
#: What marks a folder as a crowd batch (``studio export``, ``studio study``) beside its
#: images/; and the infix of the temporary name it is written under.
BATCH_FILES = (MTURK_CSV, LS_TASKS)
PARTIAL = ".partial-"
LOCAL_FILES = "/data/local-files/?d="  # Label Studio's local-files URL form


class ExportError(StudioError):
    pass


@dataclass
class ExportReport:
    out_dir: Path
    mapping: Path
    items: int = 0
    gold: int = 0
    repeats: int = 0
    refused: list[str] = field(default_factory=list)
    set_aside: int = 0  # candidate rows of a salvaged workspace that made no sense: not read


def label_studio_config(expressions: bool = False) -> str:
    """The labelling interface: the questions above the image, and the image at most 512 px
    wide (twice the export's size), so that the choices stay on screen on a 900 px tall
    display (below a full-width image they would need scrolling)."""
    parts = ['<View>', '  <Header value="Is this person smiling?"/>',
             '  <Choices name="smile" toName="image" choice="single" required="true" '
             'showInline="true">',
             '    <Choice value="Smile"/>', '    <Choice value="No smile"/>', '  </Choices>']
    if expressions:
        parts += ['  <Header value="Which expression is it?"/>',
                  '  <Choices name="expression" toName="image" choice="single" '
                  'showInline="true">']
        parts += [f'    <Choice value="{e}"/>' for e in BASIC_EXPRESSIONS]
        parts += ['  </Choices>']
    parts += ['  <Image name="image" value="$image" maxWidth="512px"/>']
    return "\n".join([*parts, '</View>']) + "\n"


def mturk_layout() -> str:
    """An MTurk HIT layout (Design Layout > Source) for one image per HIT: ${image_url} is
    filled from mturk.csv's column of that name. A crowd-image-classifier named "smile" in a
    crowd-form with answer-format="flatten-objects" comes back as the batch results'
    Answer.smile.label column, which ``studio crowd-report`` reads."""
    return """<script src="https://assets.crowd.aws/crowd-html-elements.js"></script>
<crowd-form answer-format="flatten-objects">
  <crowd-image-classifier name="smile" src="${image_url}"
      header="Is this person smiling?" categories="['Smile', 'No smile']">
    <full-instructions header="Is this person smiling?">
      <p>Look at the face and choose <strong>Smile</strong> if the person is smiling,
      <strong>No smile</strong> if not. There is no trick: answer what you see.</p>
    </full-instructions>
    <short-instructions>
      <p>Choose Smile or No smile for the face shown.</p>
    </short-instructions>
  </crowd-image-classifier>
</crowd-form>
"""


def layout_variables(html: str) -> set[str]:
    """The ${name} variables of an MTurk layout: each must be a column of the input CSV."""
    return set(re.findall(r"\$\{([^}]*)\}", html))


def local_files_url(path: Path, root: Path) -> str:
    """Label Studio's URL of a file it serves itself: the path after ?d= is relative to its
    LOCAL_FILES_DOCUMENT_ROOT (label_studio/io_storages/localfiles)."""
    return LOCAL_FILES + quote(Path(path).relative_to(root).as_posix(), safe="/")


class IdentityGate:
    """Re-measures every surrogate against its original at export time, with both
    recognizers as the read-back does (``metrics.comparison.another_person``): the stored
    metrics are not trusted, and a candidate whose face cannot be found is refused too,
    since its identity cannot be checked. The original's descriptors are the ones the batch
    stored (both since schema 3, so the photo need not be where it was). A face of an older
    workspace has dlib's only: the second recognizer then reads its original photo, once
    per face, and a photo that is gone or changed refuses its candidates, never leaving
    dlib to judge alone. A missing or corrupt recognizer file stops the gate before it
    measures anything."""

    def __init__(self, analyzer, workspace: Workspace | None = None) -> None:
        self.analyzer = analyzer
        self.workspace = workspace
        analyzer.load_second()  # ModelFileError naming the file and `make models`
        self._originals: dict[int, FaceAnalysis | str] = {}  # face id -> face, or why not
        self.photos_read = 0  # originals read for their second descriptor (old workspaces)

    def check(self, face: FaceRecord, rgb: np.ndarray) -> str | None:
        original = self.original(face)
        if isinstance(original, str):
            return original
        return self.measure(original, rgb)[0]

    def original(self, face: FaceRecord) -> FaceAnalysis | str:
        """The stored face with both recognizers' descriptors of its original, or why the
        second cannot be had."""
        if face.descriptor2 is not None:
            return face_analysis(face)
        if face.id not in self._originals:
            self._originals[face.id] = self._describe(face)
        return self._originals[face.id]

    def _describe(self, face: FaceRecord) -> FaceAnalysis | str:
        from studio.core.analysis.images import load_image
        from studio.core.errors import ImageLoadError

        old = ("the workspace was made before the studio stored the second recognizer's "
               "descriptor, so it is read from the original photo, and ")
        path = self.workspace.locate(face.original_id) if self.workspace else None
        if path is None:
            return (f"{old}that photo is not where the workspace saw it (`studio relink` "
                    "points the workspace at a moved folder)")
        try:
            if sha256_of(path) != face.original_sha256:
                return f"{old}{path.name} has changed since the batch"
            rgb = load_image(path).rgb
        except (OSError, ImageLoadError) as exc:
            return f"{old}{path.name} cannot be read ({exc})"
        self.photos_read += 1
        return self.analyzer.describe2(rgb, [face_analysis(face)])[0]

    def measure(self, original: FaceAnalysis, rgb: np.ndarray
                ) -> tuple[str | None, FaceAnalysis | None]:
        """(why it is refused or None, the face read in the picture or None). ``original``
        carries both recognizers' descriptors."""
        if original.descriptor is None or original.descriptor2 is None:
            return "the original has no identity descriptor", None
        c = compare(self.analyzer, original, rgb)
        if c.surrogate is None or c.distance is None or c.similarity2 is None:
            return ("no face found in the surrogate, so its identity cannot be checked",
                    c.surrogate)
        if another_person(c.distance, c.similarity2):
            return None, c.surrogate
        same = []
        if c.same_person_dlib:
            same.append(f"identity distance {c.distance:.2f} < {SAME_PERSON_THRESHOLD} (dlib)")
        if c.same_person2:
            same.append(f"similarity {c.similarity2:.2f} >= {threshold2():.2f} (the second "
                        "recognizer, MobileFaceNet ArcFace)")
        return f"{' and '.join(same)}: the same person", c.surrogate


def _item_id(taken: set[str]) -> str:
    while (new := secrets.token_hex(6)) in taken:
        pass
    taken.add(new)
    return new


def crowd_formats(names: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """--format's names as FORMATS ("both" is every one); ExportError for any other."""
    out: list[str] = []
    for name in names:
        if name != BOTH and name not in FORMATS:
            raise ExportError(f"unknown format {name!r}; use {', '.join(FORMATS)} or {BOTH}")
        out += [f for f in (FORMATS if name == BOTH else (name,)) if f not in out]
    return tuple(out)


def in_crowd_batch(picture: Path) -> bool:
    """True for a picture of a crowd batch (``images/<item_id>.png`` of a folder written by
    write_batch, or of one left half-written): never a photo to take as an original."""
    batch = Path(picture).parent.parent
    return Path(picture).parent.name == "images" and (
        any((batch / name).is_file() for name in BATCH_FILES)
        or (batch.name.startswith(".") and PARTIAL in batch.name))


def check_base_url(base_url: str) -> None:
    """--base-url must be an http(s) address: it begins every image URL a crowd is given
    (and every cell of mturk.csv), so anything else (a formula, a file: path) is refused."""
    try:
        parts = urlsplit(base_url)
        ok = parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
    except ValueError:
        ok = False
    if not ok:
        raise ExportError(f"--base-url {base_url[:80]!r} is not an http:// or https:// address "
                          "(e.g. https://example.org/batch1/)")


def check_export(out_dir: str | Path, mapping: str | Path | None = None,
                 formats: tuple[str, ...] = FORMATS, base_url: str = "",
                 gold: int = 0, truth: dict[str, bool] | None = None,
                 local_root: str | Path | None = None) -> tuple[Path, Path]:
    """Everything about an export that can be wrong before any work: the options, and the
    places it will write to. Returns the export folder and the mapping, absolute."""
    out_dir = Path(out_dir).resolve()
    mapping = Path(mapping).resolve() if mapping else out_dir.with_name(
        out_dir.name + ".private-mapping.csv")
    formats = crowd_formats(formats)
    if "mturk" in formats and not base_url:
        raise ExportError("--base-url is needed for mturk.csv: where the images will be "
                          "served from, e.g. https://example.org/batch1/")
    if base_url:
        check_base_url(base_url)
    if out_dir.exists():
        raise ExportError(f"{out_dir} already exists; choose a new folder (exports never "
                          "overwrite)")
    if mapping.exists():
        raise ExportError(f"the private mapping {mapping} already exists")
    if out_dir in mapping.parents:
        raise ExportError("the private mapping must not be inside the export folder")
    if gold and not truth:
        raise ExportError("gold items need known labels: pass --truth T.csv")
    if local_root is not None:
        root = Path(local_root).resolve()
        if root == out_dir:  # Label Studio refuses a storage at its document root
            raise ExportError(f"{out_dir} is the Label Studio document root itself "
                              "(--local-files-root): it must be a folder inside it")
        if root not in out_dir.parents:
            raise ExportError(f"{out_dir} is not inside the Label Studio document root {root} "
                              "(--local-files-root): Label Studio serves only files under it")
    try:
        check_writable_dir(out_dir.parent, "the export folder")
        check_writable_dir(mapping.parent, "the private mapping")
    except StudioError as exc:
        raise ExportError(str(exc)) from exc
    return out_dir, mapping


def _border_pixels(h: int, w: int, n: int, rng: np.random.Generator
                   ) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random pixels within a twelfth of the image from its edges: background."""
    depth = rng.integers(0, max(1, min(h, w) // 12), n)
    side = rng.integers(0, 4, n)  # top, bottom, left, right
    ys_along, xs_along = rng.integers(0, h, n), rng.integers(0, w, n)
    ys = np.choose(side, [depth, h - 1 - depth, ys_along, ys_along])
    xs = np.choose(side, [xs_along, xs_along, depth, w - 1 - depth])
    return ys, xs


def distinct_png(png: bytes, rng: np.random.Generator, taken: set[bytes]) -> bytes:
    """The same picture in other bytes, for a second showing: eight pixels of the border
    (background, away from the face) moved by one level of 255 and another PNG compression
    level, until its sha256 is new. Neither a file hash nor a pixel hash matches."""
    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    h, w, _ = rgb.shape
    while True:
        out = rgb.copy()
        ys, xs = _border_pixels(h, w, 8, rng)
        cs = rng.integers(0, 3, len(ys))
        v = out[ys, xs, cs].astype(np.int16)
        step = np.where(v >= 255, -1, np.where(v <= 0, 1, rng.choice([-1, 1], len(v))))
        out[ys, xs, cs] = (v + step).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(out).save(buf, "PNG", compress_level=int(rng.integers(1, 10)))
        data = buf.getvalue()
        digest = hashlib.sha256(data).digest()
        if digest not in taken:
            taken.add(digest)
            return data


def export_batch(workspace: Workspace, out_dir: str | Path, analyzer,
                 formats: tuple[str, ...] = FORMATS, base_url: str = "",
                 mapping: str | Path | None = None, truth: dict[str, bool] | None = None,
                 gold: int = 0, repeats: int = 0, expressions: bool = False,
                 seed: int | None = None, local_root: str | Path | None = None
                 ) -> ExportReport:
    out_dir, mapping = check_export(out_dir, mapping, formats, base_url, gold, truth,
                                    local_root)
    accepted = workspace.candidates(decision="accepted")
    faces = {f.id: f for f in workspace.faces()}
    gate = IdentityGate(analyzer, workspace)
    rng = np.random.default_rng(seed)
    report = ExportReport(out_dir, mapping, set_aside=workspace.set_aside())
    rows: list[tuple[dict, bytes]] = []
    taken: set[str] = set()
    ok: list[tuple[Candidate, FaceRecord, bytes]] = []
    for cand in accepted:
        face = faces.get(cand.face_id)
        if face is None:  # a workspace recovered from damage may have lost it
            report.refused.append(f"candidate {cand.id} ({cand.method}, seed {cand.seed}): "
                                  "its face's record is missing, so it cannot be checked")
            continue
        try:
            rgb = np.asarray(Image.open(io.BytesIO(workspace.image(cand.id))).convert("RGB"))
        except (OSError, ValueError, SyntaxError) as exc:  # what PIL raises on a bad PNG
            rgb, problem = None, f"its stored image is damaged ({exc})"
        else:
            problem = gate.check(face, rgb)
        if problem is not None or rgb is None:
            report.refused.append(f"candidate {cand.id} ({cand.method}, seed {cand.seed}) "
                                  f"of {Path(face.original_path).name} face {face.face_index}"
                                  f": {problem}")
            continue
        ok.append((cand, face, png_bytes(rgb)))

    def add(cand: Candidate, face: FaceRecord, png: bytes, kind: str, label: str = "") -> None:
        rows.append(({"item_id": _item_id(taken), "original_key": face.key,
                      "version": cand.method, "seed": cand.seed, "kind": kind,
                      "gold_label": label, "joy": round(face.attributes.joy, 4),
                      "candidate_id": cand.id, "original_path": face.original_path,
                      "face_index": face.face_index}, png))

    for cand, face, png in ok:
        add(cand, face, png, "item")
    report.items = len(rows)
    hashes = {hashlib.sha256(png).digest() for _, png in rows}
    known = [x for x in ok if truth and x[1].key in truth]
    for i in rng.permutation(len(known))[:gold]:
        cand, face, png = known[i]
        add(cand, face, distinct_png(png, rng, hashes), "gold",
            "smile" if truth[face.key] else "no_smile")
        report.gold += 1
    for i in rng.permutation(len(ok))[:repeats]:
        cand, face, png = ok[i]
        add(cand, face, distinct_png(png, rng, hashes), "repeat")
        report.repeats += 1
    if not rows:
        raise ExportError("nothing to export: no accepted candidate passed the identity gate"
                          if accepted else "nothing to export: no candidate is accepted yet")
    order = rng.permutation(len(rows))  # workers never see originals or versions grouped
    rows = [rows[i] for i in order]

    write_batch(rows, out_dir, mapping, formats, base_url, expressions, local_root)
    return report


def write_batch(rows: list[tuple[dict, bytes]], out_dir: Path, mapping: Path,
                formats: tuple[str, ...], base_url: str = "", expressions: bool = False,
                local_root: str | Path | None = None, fields: list[str] = MAPPING_FIELDS,
                files: dict[str, str] | None = None,
                private: dict[Path, str] | None = None) -> None:
    """OUT_DIR (images/<item_id>.png, mturk.csv with its layout, Label Studio tasks and
    config, and ``files``: name -> text) and the owner-only mapping (``fields`` of each row)
    beside it, with ``private`` (path -> text) owner-only too. Written under temporary names
    and renamed, so that a failure leaves nothing behind. Label Studio tasks point at
    base_url, or at Label Studio's own local-files serving under ``local_root``."""
    formats = crowd_formats(formats)
    token = secrets.token_hex(3)
    tmp = out_dir.with_name(f".{out_dir.name}{PARTIAL}{token}")
    tmp_map = mapping.with_name(f".{mapping.name}{PARTIAL}{token}")
    written: list[Path] = []
    try:
        (tmp / "images").mkdir(parents=True)
        for row, png in rows:
            (tmp / "images" / f"{row['item_id']}.png").write_bytes(png)
        base = base_url.rstrip("/") + "/" if base_url else ""
        urls = [f"{base}images/{row['item_id']}.png" for row, _ in rows]
        if "mturk" in formats:
            with (tmp / MTURK_CSV).open("w", newline="", encoding="utf-8") as fh:
                w = csv_writer(fh)
                w.writerow(MTURK_COLUMNS)
                w.writerows([u] for u in urls)
            (tmp / MTURK_LAYOUT).write_text(mturk_layout(), encoding="utf-8")
        if "labelstudio" in formats:
            if local_root is not None:
                root = Path(local_root).resolve()
                urls = [local_files_url(out_dir / "images" / f"{row['item_id']}.png", root)
                        for row, _ in rows]
            tasks = [{"data": {"image": u, "item_id": row["item_id"]}}
                     for u, (row, _) in zip(urls, rows, strict=True)]
            (tmp / LS_TASKS).write_text(json.dumps(tasks, indent=1), encoding="utf-8")
            (tmp / LS_CONFIG).write_text(label_studio_config(expressions), encoding="utf-8")
        for name, text in (files or {}).items():
            (tmp / name).write_text(text, encoding="utf-8")
        for path, text in (private or {}).items():
            _owner_only(path, text)
            written.append(path)
        with open_private(tmp_map) as fh:
            w = dict_writer(fh, fieldnames=fields, extrasaction="ignore")
            w.writeheader()
            w.writerows(row for row, _ in rows)
            fh.flush()
            os.fsync(fh.fileno())
        sync_tree(tmp)
        os.replace(tmp_map, mapping)
        tmp.rename(out_dir)
        for folder in {out_dir.parent, mapping.parent}:
            sync_folder(folder)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp_map.unlink(missing_ok=True)
        if not out_dir.exists():
            for path in [mapping, *written]:
                path.unlink(missing_ok=True)
        if isinstance(exc, OSError):  # a full disk, a folder gone read-only meanwhile...
            raise ExportError(f"could not write the export ({exc.strerror or exc}"
                              f"{': ' + str(exc.filename) if exc.filename else ''}); nothing "
                              "was left behind") from exc
        raise


def _owner_only(path: Path, text: str) -> None:
    with open_private(path) as fh:
        fh.write(text)
