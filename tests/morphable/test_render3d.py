"""The offscreen mesh renderer, checked on pixels: placement, texture, views, threads."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from studio.core.errors import RenderError, StudioError
from studio.core.morphable import gl_platform as glp
from studio.core.morphable.face_mesh import canonical_mesh
from studio.core.morphable.render import MeshRenderer, View

SIZE = 256
GREEN = (0, 255, 0)  # a backdrop no grey or red/blue render can produce


@pytest.fixture(scope="module")
def renderer():
    r = MeshRenderer(SIZE)
    yield r
    r.close()


@pytest.fixture(scope="module")
def face():
    """The canonical face in the renderer's image convention: 10 px per cm, centred."""
    m = canonical_mesh()
    v = np.column_stack(
        [SIZE / 2 + 10 * m.vertices[:, 0], SIZE / 2 - 10 * m.vertices[:, 1], -10 * m.vertices[:, 2]]
    )
    return v, m.triangles, m.uv


def _mask(img: np.ndarray, bg=GREEN) -> np.ndarray:
    """Pixels where the mesh shows (anything that is not exactly the backdrop)."""
    return np.any(img != np.asarray(bg, np.uint8), axis=2)


def _halves(left, right, *, vertical=False) -> np.ndarray:
    tex = np.zeros((SIZE, SIZE, 3), np.uint8)
    if vertical:  # top half / bottom half
        tex[: SIZE // 2], tex[SIZE // 2 :] = left, right
    else:
        tex[:, : SIZE // 2], tex[:, SIZE // 2 :] = left, right
    return tex


def _square(x0, y0, x1, y1, z=0.0, thickness=0.0):
    """Two triangles covering [x0, x1) x [y0, y1), wound opposite ways, z as given."""
    v = np.array([[x0, y0, z], [x1, y0, z + thickness], [x1, y1, z], [x0, y1, z + thickness]])
    return v, np.array([[0, 1, 2], [0, 3, 2]])  # first clockwise on screen, second counter


def test_shaded_face_covers_centre_and_leaves_corners(renderer, face):
    v, tri, _ = face
    img = renderer.render(v, tri, mode="shaded", background=(10, 20, 200))
    assert img.shape == (SIZE, SIZE, 3) and img.dtype == np.uint8
    centre = img[SIZE // 2, SIZE // 2].astype(int)
    assert centre.min() > 100 and np.ptp(centre) <= 2  # light grey, not the blue backdrop
    for y, x in [(0, 0), (0, SIZE - 1), (SIZE - 1, 0), (SIZE - 1, SIZE - 1)]:
        assert tuple(img[y, x]) == (10, 20, 200)


@pytest.mark.parametrize(
    ("square", "zoom", "lit"),
    [
        # Near the top-left corner: y grows downwards, pixels are [i, i+1) cells.
        ((20, 30, 40, 45), 1.0, (slice(30, 45), slice(20, 40))),
        # Zoom 2 about the frame centre (128, 128) doubles distances from it.
        ((118, 108, 128, 118), 2.0, (slice(88, 108), slice(108, 128))),
    ],
)
def test_vertex_lands_on_its_pixel(renderer, square, zoom, lit):
    # A far, thick z range checks that the depth planes follow the mesh.
    v, tri = _square(*square, z=5000.0, thickness=300.0)
    img = renderer.render(v, tri, mode="shaded", background=(0, 0, 0), view=View(zoom=zoom))
    mask = _mask(img, (0, 0, 0))
    expected = np.zeros_like(mask)
    expected[lit] = True
    assert np.array_equal(mask, expected)


def test_texture_left_half_red_lands_on_the_left(renderer, face):
    v, tri, uv = face
    img = renderer.render(v, tri, uv=uv, texture=_halves((220, 0, 0), (0, 0, 220)))
    img = img.astype(int)
    left = img[100:150, 80:115].reshape(-1, 3).mean(0)
    right = img[100:150, 141:176].reshape(-1, 3).mean(0)
    assert left[0] > 120 and left[0] > 4 * left[2]
    assert right[2] > 120 and right[2] > 4 * right[0]


def test_texture_row_zero_is_uv_v_zero(renderer, face):
    # v = 0 is the forehead in the canonical UV layout, so the top texture half must show up
    # on the upper part of the face.
    v, tri, uv = face
    img = renderer.render(v, tri, uv=uv, texture=_halves((0, 220, 0), (0, 0, 220), vertical=True))
    forehead = img[60:80, 110:146].reshape(-1, 3).mean(0)
    chin = img[195:210, 110:146].reshape(-1, 3).mean(0)
    assert forehead[1] > 120 and forehead[1] > 4 * forehead[2]
    assert chin[2] > 120 and chin[2] > 4 * chin[1]


def test_lighting_keeps_texture_colours(renderer, face):
    v, tri, uv = face
    colour = np.array([200, 120, 80])
    img = renderer.render(v, tri, uv=uv, texture=np.full((64, 64, 3), colour, np.uint8))
    inner = img[90:170, 100:156].reshape(-1, 3).astype(float)  # cheeks, nose, mouth
    median = np.median(inner, axis=0)
    assert np.all(median >= 0.75 * colour) and np.all(median <= colour + 3)  # not dark or blown
    ratios = inner / colour
    assert np.ptp(ratios, axis=1).max() < 0.05  # shading scales colour, never shifts the hue


def test_azimuth_90_shows_a_narrow_profile(renderer, face):
    v, tri, _ = face

    def width(view):
        cols = np.flatnonzero(_mask(renderer.render(v, tri, mode="shaded", background=GREEN,
                                                     view=view)).any(axis=0))
        return cols.max() - cols.min() + 1

    front, side = width(View()), width(View(azimuth=90))
    assert front > 140
    assert side < 0.75 * front


def test_positive_azimuth_and_elevation_turn_the_front_right_and_up(renderer, face):
    v, tri, uv = face

    def counts(texture, view, a, b):
        img = renderer.render(v, tri, uv=uv, texture=texture, background=(0, 0, 0), view=view)
        img = img.astype(int)
        return (img[..., a] > 2 * img[..., b]).sum(), (img[..., b] > 2 * img[..., a]).sum()

    left_right = _halves((220, 0, 0), (0, 0, 220))  # red on the face's image-left half
    red, blue = counts(left_right, View(azimuth=50), 0, 2)
    assert red > 3 * blue  # the nose turned right, so the left half faces the viewer
    red, blue = counts(left_right, View(azimuth=-50), 0, 2)
    assert blue > 3 * red

    top_bottom = _halves((0, 220, 0), (0, 0, 220), vertical=True)
    ratios = [np.divide(*counts(top_bottom, View(elevation=e), 2, 1)) for e in (-40, 0, 40)]
    assert ratios[0] < 0.9 * ratios[1] and ratios[1] < 0.9 * ratios[2]  # up shows the chin


def test_zoom_scales_the_face_about_the_frame_centre(renderer, face):
    v, tri, _ = face
    small = _mask(renderer.render(v, tri, mode="shaded", background=GREEN))
    big = _mask(renderer.render(v, tri, mode="shaded", background=GREEN, view=View(zoom=2)))
    assert big.sum() > 2.5 * small.sum()
    half = _mask(renderer.render(v, tri, mode="shaded", background=GREEN, view=View(zoom=0.5)))
    cols, rows = np.flatnonzero(half.any(axis=0)), np.flatnonzero(half.any(axis=1))
    centre = SIZE / 2
    want_x = centre + 0.5 * (v[:, 0].min() - centre), centre + 0.5 * (v[:, 0].max() - centre)
    want_y = centre + 0.5 * (v[:, 1].min() - centre), centre + 0.5 * (v[:, 1].max() - centre)
    assert abs(cols.min() - want_x[0]) <= 1 and abs(cols.max() + 1 - want_x[1]) <= 1
    assert abs(rows.min() - want_y[0]) <= 1 and abs(rows.max() + 1 - want_y[1]) <= 1


def test_default_view_is_the_identity(renderer, face):
    v, tri, uv = face
    tex = _halves((220, 0, 0), (0, 0, 220))
    plain = renderer.render(v, tri, uv=uv, texture=tex)
    explicit = renderer.render(v, tri, uv=uv, texture=tex,
                               view=View(azimuth=0.0, elevation=0.0, zoom=1.0))
    turned = renderer.render(v, tri, uv=uv, texture=tex, view=View(azimuth=5))
    assert np.array_equal(plain, explicit)
    assert not np.array_equal(plain, turned)


def test_winding_does_not_matter(renderer, face):
    v, tri, _ = face
    ccw = renderer.render(v, tri, mode="shaded")
    cw = renderer.render(v, tri[:, ::-1], mode="shaded")
    assert np.abs(ccw.astype(int) - cw.astype(int)).max() <= 1


def test_wireframe_draws_dark_edges_over_the_background(renderer, face):
    v, tri, _ = face
    shaded = renderer.render(v, tri, mode="shaded", background=GREEN)
    wire = renderer.render(v, tri, mode="wireframe", background=GREEN)
    inside = _mask(shaded)
    assert (~_mask(wire))[inside].mean() > 0.3  # the backdrop shows between the edges
    assert (wire[inside].max(axis=1) < 80).mean() > 0.05  # and the edges are dark lines
    assert (shaded[inside].max(axis=1) < 80).mean() < 0.01  # which shading never is


def test_background_image_shows_around_the_face(renderer, face):
    v, tri, uv = face
    bg = np.random.default_rng(0).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    img = renderer.render(v, tri, uv=uv, texture=_halves((220, 0, 0), (0, 0, 220)),
                          background=bg)
    assert np.array_equal(img[:30, :30], bg[:30, :30])
    assert np.array_equal(img[-30:, -30:], bg[-30:, -30:])
    assert np.abs(img[120:136, 120:136].astype(int) - bg[120:136, 120:136]).mean() > 40


def test_size_override(renderer):
    v, tri = _square(10, 10, 20, 20)
    img = renderer.render(v, tri, mode="shaded", background=(0, 0, 0), size=64)
    assert img.shape == (64, 64, 3)
    assert _mask(img, (0, 0, 0))[10:20, 10:20].all() and not _mask(img, (0, 0, 0))[25:, :].any()


def test_renders_from_two_threads(renderer, face):
    v, tri, uv = face
    tex = _halves((220, 0, 0), (0, 0, 220))
    jobs = [dict(mode="shaded"), dict(mode="textured", uv=uv, texture=tex),
            dict(mode="wireframe"), dict(mode="shaded", view=View(azimuth=30))] * 2
    expected = [renderer.render(v, tri, **kw) for kw in jobs]
    start = threading.Barrier(2)

    def run(half):
        start.wait()
        return [renderer.render(v, tri, **kw) for kw in jobs[half::2]]

    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(run, (0, 1))
    got = [None] * len(jobs)
    got[0::2], got[1::2] = first, second
    for want, have in zip(expected, got, strict=True):
        assert np.array_equal(want, have)


def test_close_is_idempotent_and_render_reopens(face):
    v, tri, _ = face

    def gl_threads():
        return sum(t.name == "studio-render3d" for t in threading.enumerate())

    before = gl_threads()
    r = MeshRenderer(SIZE)
    first = r.render(v, tri, mode="shaded")
    assert gl_threads() == before + 1
    r.close()
    r.close()
    assert gl_threads() == before
    again = r.render(v, tri, mode="shaded")  # a fresh thread and context
    assert np.array_equal(first, again)
    r.close()
    assert gl_threads() == before


def test_no_triangles_gives_the_background(renderer):
    img = renderer.render(np.zeros((3, 3)), np.zeros((0, 3), int), mode="shaded",
                          background=(1, 2, 3))
    assert img.shape == (SIZE, SIZE, 3) and (img == (1, 2, 3)).all()


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(mode="glossy"),
        dict(mode="textured"),  # no uv / texture
        dict(mode="shaded", background=np.zeros((10, 10, 3), np.uint8)),
        dict(mode="shaded", view=View(zoom=0)),
    ],
)
def test_bad_arguments_raise_value_error(renderer, face, kwargs):
    v, tri, _ = face
    with pytest.raises(ValueError):
        renderer.render(v, tri, **kwargs)


def test_triangles_out_of_range_raise_value_error(renderer):
    with pytest.raises(ValueError, match="index"):
        renderer.render(np.zeros((3, 3)), np.array([[0, 1, 3]]), mode="shaded")


def test_no_opengl_raises_a_render_error_naming_the_packages(monkeypatch):
    monkeypatch.setattr(glp, "_platform", None)
    monkeypatch.setattr(glp, "_platform_error", None)
    monkeypatch.delenv("PYOPENGL_PLATFORM", raising=False)
    monkeypatch.setattr(glp, "probe_platform", lambda name: (False, f"no {name} here"))
    with pytest.raises(RenderError) as info:
        glp.gl_platform()
    assert isinstance(info.value, StudioError)
    message = str(info.value)
    for package in ("libegl1", "libegl-mesa0", "libgl1-mesa-dri", "libosmesa6", "no egl here"):
        assert package in message
    assert "PYOPENGL_PLATFORM" not in os.environ
    with pytest.raises(RenderError):  # remembered, not probed again
        glp.gl_platform()


def test_environment_platform_is_respected(monkeypatch):
    monkeypatch.setattr(glp, "_platform", None)
    monkeypatch.setattr(glp, "_platform_error", None)
    monkeypatch.setenv("PYOPENGL_PLATFORM", "osmesa")
    monkeypatch.setattr(glp, "probe_platform", lambda name: pytest.fail("probed"))
    choice = glp.gl_platform()
    assert (choice.name, choice.how) == ("osmesa", "environment")


_CHILD = textwrap.dedent(
    """
    import numpy as np
    from studio.core.morphable.gl_platform import gl_platform
    from studio.core.morphable.render import MeshRenderer
    r = MeshRenderer(32)
    img = r.render(np.array([[4, 4, 0], [28, 4, 0], [4, 28, 0.0]]), np.array([[0, 1, 2]]),
                   mode="shaded", background=(0, 0, 0))
    print(gl_platform().name, int(img[8, 8].min() > 100), int(img[28, 28].max() == 0))
    # no close(): interpreter exit must free the context cleanly
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("egl_broken", [False, True])
def test_child_process_picks_a_platform_and_exits_cleanly(egl_broken):
    env = {k: v for k, v in os.environ.items() if k != "PYOPENGL_PLATFORM"}
    if egl_broken:  # libglvnd finds no EGL vendor, as on a machine without libegl-mesa0
        env["__EGL_VENDOR_LIBRARY_FILENAMES"] = "/nonexistent.json"
    proc = subprocess.run([sys.executable, "-c", _CHILD], env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "Exception" not in proc.stderr, proc.stderr
    name, lit, clear = proc.stdout.split()
    assert (lit, clear) == ("1", "1")
    if egl_broken:
        assert name == "osmesa"
    else:
        assert name in ("egl", "osmesa")


def test_torch_can_train_after_a_render_in_the_same_process():
    """Mesa's llvmpipe and Triton (which torch imports when an optimiser is made) each
    carry an LLVM; loaded Mesa first, the process died with a segmentation fault (the test
    suite did, once a rendering test ran before a training one)."""
    import subprocess
    import sys

    code = (
        "from studio.core.morphable.model import MorphableModel\n"
        "from studio.core.morphable.render import MeshRenderer\n"
        "m = MorphableModel.load()\n"
        "with MeshRenderer() as r:\n"
        "    r.render(m.mean_shape * (10, -10, -10) + 128, m.triangles, mode='shaded')\n"
        "    import torch\n"
        "    torch.optim.Adam([torch.zeros(3, requires_grad=True)])\n"
        "print('trained after rendering')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "trained after rendering" in done.stdout
