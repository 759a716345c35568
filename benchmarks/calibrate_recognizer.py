"""Calibrate the second recognizer (MobileFaceNet, ArcFace loss) beside dlib, on celeba-id.

Only celeba-id's test identities (``datasets.celeba_split``: the half no studio model trained
on) are read. Every photo is analysed once (MediaPipe landmarks, dlib's descriptor); the
second recognizer aligns its own 112x112 chip from the same landmarks. Both recognizers are
then scored on the same pairs: all same-person pairs (genuine) and all different-person
pairs (impostor) of the photos where a face was found. Printed side by side: the threshold at
1% and 0.1% false matches, the true-match rate there, AUC, dlib at its own 0.6, and rank-1
identification (each identity's first photo in the gallery, singletons too, the other photos
as probes), and the second recognizer's time per face. The 1% threshold is written to
``models/recognizer_calibration.json``, which ``analysis.recognizer`` reads.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/calibrate_recognizer.py`` (options
``--identities N``, ``--dry-run``). All 1,368 test identities, 2,553 photos: about 5 minutes
on one thread.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import date

import numpy as np
import torch
from timing import stats

from studio.core.analysis.analyzer import FaceAnalyzer
from studio.core.analysis.identity import SAME_PERSON_THRESHOLD
from studio.core.analysis.images import load_image
from studio.core.analysis.recognizer import (
    CALIBRATION_FILE,
    MODEL_FILE,
    SecondRecognizer,
)
from studio.core.assets import sha256_of, third_party_file, write_atomic
from studio.core.datasets import celeba_id, celeba_split
from studio.core.metrics.attacks import gallery_rows, identify, verification_roc

FALSE_MATCH_RATES = (0.01, 0.001)
CALIBRATED_FMR = 0.01  # the rate whose threshold decides "the same person"


def test_photos(identities: int) -> list:
    """celeba-id's test photos, grouped by identity; the first ``identities`` identities in
    id order (0: all of them)."""
    items = sorted(celeba_split(celeba_id(), "test"), key=lambda it: (it.identity, it.path.name))
    if identities:
        keep = set(sorted({it.identity for it in items})[:identities])
        items = [it for it in items if it.identity in keep]
    return items


def describe(items: list, threads: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, list]:
    """Per photo: the second recognizer's and dlib's descriptors (NaN rows where no face was
    found), the identity, and the second recognizer's time per face in ms."""
    analyzer = FaceAnalyzer(identity=True, gender=False)
    torch.set_num_threads(threads)  # the dlib encoder sets its own count on loading
    recognizer = SecondRecognizer()
    second = np.full((len(items), 192), np.nan, np.float32)
    dlib = np.full((len(items), 128), np.nan, np.float32)
    times: list[float] = []
    t0 = time.perf_counter()
    for n, it in enumerate(items):
        image = load_image(it.path)
        faces = analyzer.analyze(image).faces
        if faces:
            face = max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
            t = time.perf_counter()
            second[n] = recognizer.descriptors(image.rgb, [face.landmarks])[0]
            times.append((time.perf_counter() - t) * 1e3)
            dlib[n] = face.descriptor
        if (n + 1) % 250 == 0 or n + 1 == len(items):
            print(f"  {n + 1}/{len(items)} photos, {time.perf_counter() - t0:.0f} s", flush=True)
    analyzer.close()
    return second, dlib, np.array([it.identity for it in items]), times


def pair_distances(desc: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean distances of all unordered genuine and impostor pairs of the found faces
    (for unit vectors, d = sqrt(2 - 2 cos): the same order as the cosine)."""
    d = desc.astype(np.float64)
    sq = (d * d).sum(1)
    dist = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2.0 * d @ d.T, 0.0))
    i, j = np.triu_indices(len(d), 1)
    same = ids[i] == ids[j]
    return dist[i[same], j[same]], dist[i[~same], j[~same]]


def measure(desc: np.ndarray, ids: np.ndarray) -> dict:
    """Verification and identification of one recognizer on the found faces; distances are
    Euclidean, "the same person" at or under a threshold."""
    found = ~np.isnan(desc).any(axis=1)
    d, k = desc[found], ids[found]
    genuine, impostor = pair_distances(d, k)
    roc = verification_roc(genuine, impostor)
    out = {"auc": roc.auc, "genuine_pairs": int(genuine.size),
           "impostor_pairs": int(impostor.size)}
    for fmr in FALSE_MATCH_RATES:
        ok = roc.far <= fmr
        out[f"distance_at_fmr_{fmr}"] = float(roc.thresholds[ok].max())
        out[f"tmr_at_fmr_{fmr}"] = roc.tar_at(fmr)
    gallery = gallery_rows(k)
    probes = np.setdiff1d(np.arange(len(k)), gallery)
    ident = identify(d[probes], k[probes], d[gallery], k[gallery], ranks=(1,))
    out.update(rank1=ident.rates[1], rank1_chance=ident.chance[1], probes=ident.n_probes,
               gallery=ident.gallery_size)
    if desc.shape[1] == 128:  # dlib: also at its own threshold
        out["fmr_at_0.6"] = float(np.mean(impostor <= SAME_PERSON_THRESHOLD))
        out["tmr_at_0.6"] = float(np.mean(genuine <= SAME_PERSON_THRESHOLD))
    return out


def cosine(distance: float) -> float:
    return 1.0 - distance * distance / 2.0


def table(second: dict, dlib: dict) -> str:
    rows = [("", "second (MobileFaceNet)", "dlib ResNet")]
    for fmr in FALSE_MATCH_RATES:
        rows.append((f"threshold at FMR {fmr:g}",
                     f"cosine >= {cosine(second[f'distance_at_fmr_{fmr}']):.4f}",
                     f"distance <= {dlib[f'distance_at_fmr_{fmr}']:.4f}"))
        rows.append((f"TMR at FMR {fmr:g}", f"{second[f'tmr_at_fmr_{fmr}']:.4f}",
                     f"{dlib[f'tmr_at_fmr_{fmr}']:.4f}"))
    rows.append((f"dlib at its own {SAME_PERSON_THRESHOLD}", "",
                 f"FMR {dlib['fmr_at_0.6']:.4f}, TMR {dlib['tmr_at_0.6']:.4f}"))
    rows.append(("AUC", f"{second['auc']:.4f}", f"{dlib['auc']:.4f}"))
    rows.append(("rank-1 (chance)", f"{second['rank1']:.4f} ({second['rank1_chance']:.4f})",
                 f"{dlib['rank1']:.4f} ({dlib['rank1_chance']:.4f})"))
    rows.append(("genuine / impostor pairs",
                 f"{second['genuine_pairs']:,} / {second['impostor_pairs']:,}",
                 f"{dlib['genuine_pairs']:,} / {dlib['impostor_pairs']:,}"))
    rows.append(("probes / gallery identities", f"{second['probes']} / {second['gallery']}",
                 f"{dlib['probes']} / {dlib['gallery']}"))
    width = [max(len(r[c]) for r in rows) for c in range(3)]
    return "\n".join(" | ".join(v.ljust(w) for v, w in zip(r, width, strict=True))
                     for r in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--identities", type=int, default=0,
                        help="the first N test identities in id order (default 0: all)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--dry-run", action="store_true",
                        help=f"print the table; leave {CALIBRATION_FILE.name} as it is")
    args = parser.parse_args()
    items = test_photos(args.identities)
    print(f"celeba-id test identities: {len({it.identity for it in items})}, "
          f"{len(items)} photos, {os.cpu_count()} CPU cores, {args.threads} torch thread(s)")
    second, dlib, ids, times = describe(items, args.threads)
    no_face = int(np.isnan(second).any(axis=1).sum())
    s, d = measure(second, ids), measure(dlib, ids)
    threshold = cosine(s[f"distance_at_fmr_{CALIBRATED_FMR}"])
    print(f"\nfaces found on {len(items) - no_face} of {len(items)} photos\n")
    print(table(s, d))
    print(f"\nsecond recognizer per face (align + network, one face at a time): {stats(times)}")
    record = {
        "comment": "Written by benchmarks/calibrate_recognizer.py; read by "
                   "studio.core.analysis.recognizer. Cosine similarity of the L2-normalised "
                   "descriptors: the same person at or above same_person_threshold.",
        "model": MODEL_FILE, "sha256": sha256_of(third_party_file(MODEL_FILE)),
        "same_person_threshold": round(threshold, 6),
        "false_match_rate": CALIBRATED_FMR,
        "cosine_at_fmr": {str(f): round(cosine(s[f"distance_at_fmr_{f}"]), 6)
                          for f in FALSE_MATCH_RATES},
        "data": {"set": "celeba-id", "split": "test identities (datasets.celeba_split)",
                 "identities": len(set(ids.tolist())), "photos": len(items),
                 "no_face": no_face},
        "second": {k: round(v, 6) if isinstance(v, float) else v for k, v in s.items()},
        "dlib": {k: round(v, 6) if isinstance(v, float) else v for k, v in d.items()},
        "ms_per_face_median": round(float(np.median(times)), 2),
        "date": date.today().isoformat(),
    }
    if args.dry_run:
        print(f"\n(dry run: {CALIBRATION_FILE.name} left as it is)")
        return
    write_atomic(CALIBRATION_FILE, json.dumps(record, indent=1) + "\n")
    print(f"\nsame-person threshold {threshold:.4f} (cosine, FMR {CALIBRATED_FMR:g}) written to "
          f"{CALIBRATION_FILE}")


if __name__ == "__main__":
    main()
