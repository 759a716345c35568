"""The privacy switches and presets of the in-context surrogate (issue 28, part 4) on real
held-out faces: a new outline moves the face's edge, the model's skin tone ignores the
photo's tint, strict's coarsened skin tone keeps the broad tone (dark stays dark) and no
finer, blurred hair and context are blurred where promised, and the strict preset keeps
the smile and gives the same photo for the same seed."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from studio.core.analysis.images import load_image
from studio.core.analysis.landmarks import largest_face
from studio.core.errors import StudioError
from studio.core.morphable.relight import LUMA, TONES, photo_tone
from studio.core.morphable.texture_map import unwrap
from studio.core.surrogates import compositing
from studio.core.surrogates.incontext import ContextRequest
from studio.core.surrogates.outline import oval_mask
from studio.core.surrogates.privacy import PRIVACY_PRESETS, privacy_preset

pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def faces(analyzer, held_out_adults):
    """Three held-out UTKFace adults and their largest faces."""
    out = []
    for it in held_out_adults[:6:2]:
        rgb = load_image(it.path).rgb
        out.append((rgb, largest_face(analyzer.analyze(rgb).faces)))
    return out


def _band(shape, landmarks, inner: float, outer: float) -> np.ndarray:
    """The pixels between the original's oval shrunk by ``inner`` and grown by ``outer``
    shares of the face's width: where its outline runs."""
    width = compositing.face_width(landmarks)
    oval = oval_mask(shape, landmarks)

    def grown(share: float) -> np.ndarray:
        r = max(1, round(abs(share) * width))
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
        return (cv2.dilate(oval, k) if share > 0 else cv2.erode(oval, k)) > 0

    return grown(outer) & ~grown(-inner)


def _moved(a: np.ndarray, b: np.ndarray, where: np.ndarray, level: int = 12) -> float:
    """Share of ``where`` whose pixels differ by more than ``level`` grey levels."""
    diff = np.abs(a.astype(np.int16) - b.astype(np.int16)).max(axis=2)
    return float(np.mean(diff[where] > level))


def test_presets_are_declared_once_and_a_bad_name_is_one_clear_error():
    strict = privacy_preset("strict").request(seed=4)
    assert (strict.outline, strict.skin, strict.context, strict.seed) == ("new", "bucket",
                                                                         "blur", 4)
    assert privacy_preset(None) is PRIVACY_PRESETS["default"]
    assert privacy_preset("default").request() == ContextRequest()
    with pytest.raises(StudioError, match="unknown privacy preset 'lax'; use default, strict"):
        privacy_preset("lax")
    for field, bad in (("outline", "round"), ("hair", "shave"), ("skin", "blue"),
                       ("identity", "near")):
        with pytest.raises(StudioError, match=f"{field} must be one of"):
            ContextRequest(**{field: bad})


def test_a_new_outline_changes_the_pixels_along_the_old_one(maker, faces):
    """Kept, the face ends on the original's outline, so just outside it the photo is
    untouched; new, the new identity's (larger, covering) face changes that band."""
    for rgb, face in faces:
        keep = maker.make(rgb, [face], ContextRequest(seed=3)).image
        new = maker.make(rgb, [face], ContextRequest(seed=3, outline="new")).image
        outside = _band(rgb.shape, face.landmarks, 0.0, 0.04)
        kept, moved = _moved(keep, rgb, outside), _moved(new, rgb, outside)
        assert kept < 0.15 and moved > max(0.2, kept + 0.15), (kept, moved)
        # Only the face and its border: the far background is the photo's.
        far = ~_band(rgb.shape, face.landmarks, 1.0, 0.3)
        assert np.array_equal(new[far], rgb[far])


def test_the_models_skin_tone_does_not_follow_the_photos_tint(maker, faces):
    """Tint the photo warmer: with the tone matched the new face follows it, with the
    model's own tone it moves far less."""
    rgb, face = faces[0]
    warm = np.clip(rgb * np.array([1.2, 1.0, 0.8]), 0, 255).astype(np.uint8)
    inside = _band(rgb.shape, face.landmarks, 0.15, -0.1)

    def red_over_blue(image: np.ndarray) -> float:
        pixels = image[inside].astype(np.float64)
        return float(pixels[:, 0].mean() / pixels[:, 2].mean())

    shift = {}
    for skin in ("match", "model"):
        request = ContextRequest(seed=3, skin=skin)
        shift[skin] = (red_over_blue(maker.make(warm, [face], request).image)
                       / red_over_blue(maker.make(rgb, [face], request).image))
    assert shift["match"] > 1.25
    assert shift["model"] - 1 < 0.5 * (shift["match"] - 1), shift


@pytest.fixture(scope="module")
def by_tone(analyzer, maker):
    """Held-out UTKFace adults (25-50), three labelled black and three white, each with
    its largest face and that face's skin colour as the photo shows it."""
    from studio.core.datasets import utk_split, utkface

    test = [it for it in utk_split(utkface(), "test") if 25 <= it.age <= 50]
    out = []
    for race in (1, 0):
        for it in [it for it in test if it.race == race][:3]:
            rgb = load_image(it.path).rgb
            face = largest_face(analyzer.analyze(rgb).faces)
            out.append((rgb, face, _tone(maker.layout, rgb, face)))
    return out


def _tone(layout, rgb: np.ndarray, face) -> np.ndarray:
    """(3,) the skin colour of the face at ``face``'s landmarks in ``rgb``."""
    tex, visible = unwrap(rgb, face.landmarks, layout.raster, layout.model.triangles)
    return photo_tone(layout, tex, visible)


def test_strict_keeps_the_broad_skin_tone_dark_stays_darker(maker, by_tone):
    """The darkest and lightest of six held-out faces fall in different tone buckets, and
    under strict their new faces keep their order of skin brightness, each nearest its
    own bucket's colour (the model's own tone made dark skin pale and light skin brown)."""
    strict = privacy_preset("strict")
    ordered = sorted(by_tone, key=lambda t: float(t[2] @ LUMA))
    (dark_rgb, dark, dark_tone), (light_rgb, light, light_tone) = ordered[0], ordered[-1]
    assert TONES.index(dark_tone) < TONES.index(light_tone)
    made = {}
    for name, rgb, face, tone in (("dark", dark_rgb, dark, dark_tone),
                                  ("light", light_rgb, light, light_tone)):
        out = maker.make(rgb, [face], strict.request(seed=5)).image
        made[name] = float(_tone(maker.layout, out, face) @ LUMA)
        # nearest its own bucket's colour of all: the broad tone kept
        nearest = int(np.argmin(np.abs(TONES.colours @ LUMA - made[name])))
        assert nearest == TONES.index(tone), (name, made, tone)
    assert made["light"] - made["dark"] > 0.15, made


def test_a_finer_tone_within_a_bucket_does_not_cross(maker, by_tone):
    """Two held-out faces in one bucket get the same target colour; and one face made
    brighter or darker within its bucket gets the same new face's tone under strict's
    skin, where the matched tone follows the photo."""
    buckets = [TONES.index(t) for _, _, t in by_tone]
    pair = next((i, j) for i in range(len(by_tone)) for j in range(i + 1, len(by_tone))
                if buckets[i] == buckets[j])
    tones = [by_tone[k][2] for k in pair]
    assert np.array_equal(TONES.snap(tones[0]), TONES.snap(tones[1]))

    def off_middle(tone: np.ndarray) -> float:
        """How far a tone lies from its inner bucket's middle (0 in an end bucket)."""
        k = TONES.index(tone)
        if k in (0, len(TONES.colours) - 1):
            return 0.0
        return float(tone @ LUMA) - (TONES.edges[k - 1] + TONES.edges[k]) / 2

    # the face furthest from its bucket's middle, moved most of the way to its mirror
    # image there: the largest change of tone that stays in the bucket
    rgb, face, tone = max(by_tone, key=lambda t: abs(off_middle(t[2])))
    gain = 1 - 1.6 * off_middle(tone) / float(tone @ LUMA)
    moved = np.clip(rgb * gain, 0, 255).astype(np.uint8)
    assert TONES.index(_tone(maker.layout, moved, face)) == TONES.index(tone)
    shift = {}
    for skin in ("match", "bucket"):  # unrefined: the tone as drawn
        request = ContextRequest(seed=3, skin=skin, refine=False)
        made = [maker.make(image, [face], request).image for image in (moved, rgb)]
        shift[skin] = abs(float((_tone(maker.layout, made[0], face)
                                 - _tone(maker.layout, made[1], face)) @ LUMA))
    assert shift["match"] > 0.01 and shift["bucket"] < 0.3 * shift["match"], shift


def test_hair_and_context_are_blurred_where_promised(maker, faces, analyzer):
    """Blurred hair: the head around the face, not the rest of the photo; a blurred context:
    all of it (the photo is widened so that its corners lie beyond the head)."""
    rgb = cv2.copyMakeBorder(faces[1][0], 160, 160, 160, 160, cv2.BORDER_REPLICATE)
    face = largest_face(analyzer.analyze(rgb).faces)
    hair = maker.make(rgb, [face], ContextRequest(seed=3, hair="blur"))
    context = maker.make(rgb, [face], ContextRequest(seed=3, context="blur"))
    around = _band(rgb.shape, face.landmarks, -0.08, 0.25)  # beside the face, not on it
    assert _moved(hair.image, rgb, around, 4) > 0.3
    h, w = rgb.shape[:2]
    corner = np.zeros(rgb.shape[:2], bool)
    corner[: h // 10, : w // 10] = True  # a corner of the photo, far from the face
    assert np.array_equal(hair.image[corner], rgb[corner]) and not hair.changed[corner].any()
    blurred = cv2.GaussianBlur(rgb, (0, 0), 0.15 * compositing.face_width(face.landmarks))
    edges = cv2.Canny(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), 50, 150) > 0
    far = ~_band(rgb.shape, face.landmarks, 1.0, 0.6) & cv2.dilate(
        edges.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)  # detail, far off
    to_blur = np.abs(context.image[far].astype(int) - blurred[far]).mean()
    to_photo = np.abs(context.image[far].astype(int) - rgb[far]).mean()
    assert to_blur < 0.5 * to_photo, (to_blur, to_photo)  # the photo's blur, not the photo


def test_strict_keeps_the_smile_and_repeats_for_a_seed(engine, genki_test):
    """Verified as ``studio anonymize --privacy strict`` makes it: another person to both
    recognizers, the smile decision kept, the same photo for the same seed."""
    from studio.core.surrogates.whole_photo import replace_faces

    smiling = [g for g in genki_test if g.smile][:2] + [g for g in genki_test if not g.smile][:2]
    for item in smiling:
        image = load_image(item.path)
        analysis = engine.analyze(image)
        face = largest_face(analysis.faces)
        made = [replace_faces(engine, image, analysis.faces, "context", s, privacy="strict")
                for s in (11, 11, 12)]
        assert np.array_equal(made[0].image, made[1].image)
        assert not np.array_equal(made[0].image, made[2].image)
        assert made[0].replaced == len(analysis.faces)
        back = largest_face(engine.analyzer.analyze(made[0].image, recall=False).faces)
        assert back is not None
        assert (back.attributes.joy >= 0.5) == (face.attributes.joy >= 0.5), item.path.name


def test_each_other_preset_is_a_registered_method_that_draws_under_it(engine,
                                                                       held_out_adults):
    """``context-strict`` (batch, evaluate) is the in-context method under the strict preset:
    its ``make`` gives the photo ``replace`` gives under ``--privacy strict`` (anonymize, the
    window), not the default's, for the same seed."""
    from studio.core.surrogates.registry import IN_CONTEXT, REGISTRY

    others = [name for name in PRIVACY_PRESETS if name != "default"]
    keys = [f"{IN_CONTEXT}-{name}" for name in others]
    assert keys == ["context-strict"]
    spec = REGISTRY["context-strict"]
    assert (spec.privacy, spec.family, spec.candidate) == ("strict", "context-strict", True)
    # its own drawing revision on top of the base's: a change to either is measured anew
    assert divmod(spec.revision, 100)[0] == REGISTRY[IN_CONTEXT].revision
    assert spec.revision % 100 >= 1
    assert REGISTRY[IN_CONTEXT].privacy == "default" and not spec.batch_default
    image = load_image(held_out_adults[3].path)
    faces = engine.analyze(image).faces
    assert len(faces) == 1
    REGISTRY.maker("context-strict").load(engine)
    strict = REGISTRY.maker("context-strict").make(engine, image, faces[0], [5])[0]
    default = REGISTRY.maker(IN_CONTEXT).make(engine, image, faces[0], [5])[0]
    anonymized = REGISTRY.maker(IN_CONTEXT).replace(engine, image, faces, 5, privacy="strict")
    assert np.array_equal(strict, anonymized.image)
    assert not np.array_equal(strict, default)
    corner = (slice(0, 16), slice(0, 16))  # the photo's top left: hair or background

    def moved(rgb: np.ndarray) -> float:
        return float(np.abs(rgb[corner].astype(int) - image.rgb[corner]).mean())

    assert moved(default) < 0.5 and moved(strict) > 2, (moved(default), moved(strict))


def _iris_colours(rgb: np.ndarray, face, light_irises: bool, seeds: range) -> np.ndarray:
    """(len(seeds), 3) mean colour of the painted iris's ring, right of its centre (off
    the pupil and the highlight), for each seed, eyes painted in place on the photo."""
    from studio.core.analysis.face_regions import EYES, iris_for_eye
    from studio.core.surrogates.face_paint import paint_eyes

    centre, radius = iris_for_eye(face.landmarks, EYES[0])
    x, y = round(float(centre[0]) + 0.7 * radius), round(float(centre[1]))
    out = []
    for seed in seeds:
        painted = rgb.copy()
        paint_eyes(painted, face.landmarks, face.landmarks, np.ones(3), seed, light_irises)
        out.append(painted[y - 1:y + 2, x - 1:x + 2].reshape(-1, 3).mean(0))
    return np.array(out)


def test_dark_skin_gets_brown_irises_light_skin_may_get_blue(by_tone):
    """A blue iris in a brown face read as painted: the darker tones get browns only (a
    choice made from the broad tone alone)."""
    from studio.core.surrogates.incontext import light_irises

    ordered = sorted(by_tone, key=lambda t: float(t[2] @ LUMA))
    (dark_rgb, dark, dark_tone), (light_rgb, light, light_tone) = ordered[0], ordered[-1]
    assert not light_irises(dark_tone) and light_irises(light_tone) and light_irises(None)
    browns = _iris_colours(dark_rgb, dark, False, range(24))
    assert np.all(browns[:, 0] > browns[:, 2]), browns  # red over blue: brown, every seed
    mixed = _iris_colours(light_rgb, light, True, range(24))
    assert np.any(mixed[:, 2] > mixed[:, 0]), mixed  # some seed gives a blue iris
