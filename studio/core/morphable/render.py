"""Offscreen rendering of a triangle mesh (a fitted 3D face) into an RGB image, via pyrender.

Why it is built this way:

* No display is needed: PyOpenGL runs on Mesa's surfaceless EGL (llvmpipe) when it works,
  else on OSMesa (:mod:`studio.core.morphable.gl_platform` chooses, before pyrender loads).
* An OpenGL context belongs to one thread at a time, and the app renders from any Qt
  worker thread, so each :class:`MeshRenderer` owns one thread that makes every GL call;
  :meth:`MeshRenderer.render` hands the job over and waits for the image.
* Vertices are given in the output image's pixel coordinates (like face landmarks), so a
  fitted face rendered with the default :class:`View` lands exactly on the photo.

Qt is never imported here.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import numpy as np

from studio.core.errors import RenderError
from studio.core.morphable.gl_platform import INSTALL_HINT, gl_platform

MODES = ("textured", "shaded", "wireframe")

# Soft, camera-fixed Lambert lighting, evaluated per vertex on the CPU (Gouraud) and drawn
# with pyrender's unlit "flat" shader: llvmpipe spends ~20 ms per 256x256 frame in pyrender's
# PBR fragment shader, the flat one ~4 ms. Shade factors multiply the texture's own (sRGB)
# values, so a surface facing the viewer shows its texture exactly (factor 1.0) and the
# sides fall off gently to about 0.55. Directions point from the scene towards the light
# in OpenGL coordinates (x right, y up, z towards the viewer).
_KEY_TOWARDS = (-0.35, 0.55, 1.0)  # upper front, a little to the left
_KEY = 0.45
_FILL_TOWARDS = (0.55, -0.15, 1.0)  # front right, slightly low
_FILL = 0.2
_AMBIENT = 0.45
_SHADED_GREY = 200  # "shaded" base colour (0-255) of a surface facing the viewer
_WIRE_GREY = 40  # unlit line colour of "wireframe" (0-255)

_CLOSE_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class View:
    """How the mesh is turned and magnified; the default shows it exactly as given."""

    azimuth: float = 0.0  # degrees about the frame's vertical axis; > 0 turns the front right
    elevation: float = 0.0  # degrees about the horizontal axis; > 0 turns the front up
    zoom: float = 1.0  # > 1 magnifies about the frame centre


def _unit(v: tuple[float, float, float]) -> np.ndarray:
    a = np.asarray(v, np.float64)
    return a / np.linalg.norm(a)


def lambert(normals: np.ndarray) -> np.ndarray:
    """Per-vertex shade factor in [0, 1] for unit normals in OpenGL camera coordinates."""
    shade = np.full(len(normals), _AMBIENT)
    for towards, weight in ((_KEY_TOWARDS, _KEY), (_FILL_TOWARDS, _FILL)):
        shade += weight * np.clip(normals @ _unit(towards), 0.0, None)
    return np.clip(shade, 0.0, 1.0)


def _rotation(view: View) -> np.ndarray:
    """Azimuth about +y, then elevation about x, in OpenGL coordinates (z to the viewer)."""
    a, e = np.radians(view.azimuth), np.radians(view.elevation)
    ry = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    rx = np.array([[1, 0, 0], [0, np.cos(e), np.sin(e)], [0, -np.sin(e), np.cos(e)]])
    return rx @ ry


def vertex_normals(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Smooth (area-weighted) unit normals, turned to face the viewer (+z).

    The caller's winding may be either way and pyrender's shader has no two-sided lighting,
    so the whole set is flipped when it points away: an open surface (a face) is judged by
    its normals' mean z, a closed one (mean z near 0) by its signed volume.
    """
    v0, v1, v2 = (vertices[triangles[:, k]] for k in range(3))
    face_n = np.cross(v1 - v0, v2 - v0)  # length = 2 * area
    n = np.zeros_like(vertices)
    for k in range(3):
        for c in range(3):
            n[:, c] += np.bincount(triangles[:, k], face_n[:, c], minlength=len(vertices))
    total = np.linalg.norm(face_n, axis=1).sum()
    facing = face_n[:, 2].sum()
    if abs(facing) > 0.1 * total:
        flip = facing < 0
    else:
        centre = vertices.mean(axis=0)
        flip = np.einsum("ij,ij->", v0 - centre, np.cross(v1 - centre, v2 - centre)) < 0
    if flip:
        n = -n
    length = np.linalg.norm(n, axis=1, keepdims=True)
    unused = length[:, 0] < 1e-12
    n = n / np.where(unused[:, None], 1.0, length)
    n[unused] = (0.0, 0.0, 1.0)
    return n


class _GLState:
    """Scene, camera and the pyrender renderer; used only on the GL thread."""

    def __init__(self, size: int) -> None:
        choice = gl_platform()
        try:
            import pyrender
        except ImportError as e:
            raise RenderError(
                f"3D rendering needs the Python packages pyrender-maintained, PyOpenGL and "
                f"trimesh ({e}). Reinstall the studio's requirements."
            ) from e
        self.pr = pyrender
        try:
            self.renderer = pyrender.OffscreenRenderer(size, size)
        except Exception as e:  # PyOpenGL raises assorted types for a missing driver
            raise RenderError(
                f"Offscreen OpenGL ({choice.name}, chosen by {choice.how}) could not start: "
                f"{type(e).__name__}: {e}. {INSTALL_HINT}"
            ) from e
        # Drawn over transparent black, so the read-back alpha is the mesh's coverage.
        self.scene = pyrender.Scene(bg_color=(0.0, 0.0, 0.0, 0.0))
        self.camera = pyrender.OrthographicCamera(xmag=size / 2, ymag=size / 2)
        self.scene.add(self.camera, pose=np.eye(4))
        self.mesh_node: Any = None

    def render(self, job: _Job) -> np.ndarray:
        """(size, size, 4) uint8 RGBA, colour premultiplied by coverage."""
        pr = self.pr
        texture = None
        if job.texture is not None:
            texture = pr.Texture(source=job.texture, source_channels="RGB")
        material = pr.MetallicRoughnessMaterial(
            baseColorFactor=job.base_colour, baseColorTexture=texture,
            doubleSided=True, wireframe=job.mode == "wireframe",
        )
        primitive = pr.Primitive(
            positions=job.positions, texcoord_0=job.texcoords, color_0=job.colours,
            indices=job.triangles, material=material,
        )
        if self.mesh_node is not None:
            self.scene.remove_node(self.mesh_node)
        self.mesh_node = self.scene.add(pr.Mesh(primitives=[primitive]))
        self.camera.xmag = self.camera.ymag = job.size / 2 / job.zoom
        self.camera.znear, self.camera.zfar = job.znear, job.zfar
        self.renderer.viewport_width = self.renderer.viewport_height = job.size
        flags = pr.RenderFlags.RGBA | pr.RenderFlags.FLAT | pr.RenderFlags.SKIP_CULL_FACES
        colour, depth = self.renderer.render(self.scene, flags=flags)
        if colour.shape[2] == 4:
            return colour
        # OSMesa: pyrender draws to the window buffer (no framebuffer object, so neither
        # alpha nor multisampling); the depth buffer tells mesh from background instead.
        hit = depth > 0
        return np.dstack([np.where(hit[..., None], colour, 0), hit * np.uint8(255)])

    def delete(self) -> None:
        self.renderer.delete()


@dataclass
class _Job:
    positions: np.ndarray  # (N, 3) float32, OpenGL camera coordinates
    colours: np.ndarray | None  # (N, 4) float32 per-vertex shade (None: unlit)
    texcoords: np.ndarray | None  # (N, 2) float32, v = 0 at the texture's bottom row
    texture: np.ndarray | None
    base_colour: tuple[float, float, float, float]
    triangles: np.ndarray  # (M, 3) uint32
    mode: str
    size: int
    zoom: float
    znear: float
    zfar: float


class _GLThread:
    """One daemon thread that owns a GL context and runs, in order, every call given to it.

    A daemon, so a hung driver can never keep the app from exiting; :meth:`shutdown` (also
    run at interpreter exit) frees the context on this thread first.
    """

    def __init__(self) -> None:
        self._state: _GLState | None = None
        self._queue: queue.SimpleQueue[tuple[Future, Callable[..., Any], tuple] | None] = (
            queue.SimpleQueue()
        )
        self._thread = threading.Thread(target=self._run, name="studio-render3d", daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        future: Future = Future()
        self._queue.put((future, fn, args))
        return future

    def render(self, job: _Job) -> np.ndarray:
        if self._state is None:
            self._state = _GLState(job.size)
        return self._state.render(job)

    def _delete(self) -> None:
        state, self._state = self._state, None
        if state is not None:
            state.delete()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            future, fn, args = item
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args))
                except BaseException as e:
                    future.set_exception(e)
            del item, future, fn, args

    def shutdown(self) -> None:
        """Free the GL context on its thread, then end the thread. Runs once."""
        done = self.submit(self._delete)
        self._queue.put(None)
        if threading.current_thread() is self._thread:
            return
        with contextlib.suppress(Exception):  # nothing useful to do with a failed teardown
            done.result(timeout=_CLOSE_TIMEOUT_S)
        self._thread.join(timeout=_CLOSE_TIMEOUT_S)


def _background(background: np.ndarray | tuple[int, int, int], size: int) -> np.ndarray:
    if isinstance(background, np.ndarray) and background.ndim == 3:
        if background.shape != (size, size, 3) or background.dtype != np.uint8:
            raise ValueError(
                f"background image must be ({size}, {size}, 3) uint8, "
                f"got {background.shape} {background.dtype}"
            )
        return background
    colour = np.asarray(background, np.float64).reshape(-1)
    if colour.shape != (3,):
        raise ValueError(f"background must be an RGB colour or an image, got {background!r}")
    return np.broadcast_to(np.clip(np.round(colour), 0, 255).astype(np.uint8), (size, size, 3))


class MeshRenderer:
    """Renders meshes given in image pixel coordinates, from any thread, without a display.

    The GL thread and context start on the first :meth:`render` (which therefore takes a
    couple of seconds: pyrender's import and the platform probe). :meth:`close` frees
    them; rendering again afterwards starts a fresh thread and context.
    """

    def __init__(self, size: int = 256) -> None:
        if size < 1:
            raise ValueError(f"size must be positive, got {size}")
        self.size = int(size)
        self._lock = threading.Lock()
        self._worker: _GLThread | None = None
        self._finalizer: weakref.finalize | None = None

    def render(
        self,
        vertices: np.ndarray,
        triangles: np.ndarray,
        *,
        uv: np.ndarray | None = None,
        texture: np.ndarray | None = None,
        mode: str = "textured",
        background: np.ndarray | tuple[int, int, int] = (128, 128, 128),
        view: View = View(),  # frozen, so one shared default is safe
        size: int | None = None,
    ) -> np.ndarray:
        """(size, size, 3) uint8 RGB of the mesh over ``background``.

        ``vertices`` (N, 3) are image coordinates of the output: x right and y down in
        pixels ([0, size)), z away from the viewer in the same units; with the default view
        a vertex at (x, y) lands on pixel (x, y) (orthographic). ``triangles`` (M, 3) may
        wind either way. ``uv`` (N, 2) has v = 0 at row 0 of ``texture`` (H, W, 3 uint8);
        both are needed for ``mode="textured"`` only.
        """
        size = self.size if size is None else int(size)
        job, backdrop = self._prepare(vertices, triangles, uv, texture, mode, background,
                                      view, size)
        if job is None:
            return backdrop.copy()
        rgba = self._draw(job)
        alpha = rgba[..., 3:4].astype(np.float32) * (1.0 / 255.0)
        # The mesh was drawn over transparent black with 4x multisampling, so ``rgba`` is
        # premultiplied by coverage: the edges blend into the backdrop without halos.
        out = rgba[..., :3].astype(np.float32) + (1.0 - alpha) * backdrop
        return np.clip(out + 0.5, 0, 255).astype(np.uint8)

    def render_layer(self, vertices: np.ndarray, triangles: np.ndarray, *, uv: np.ndarray,
                     texture: np.ndarray, size: int) -> np.ndarray:
        """(size, size, 4) uint8 RGBA of the textured mesh, unlit (the texture's own colours,
        its shading already baked in), colour premultiplied by coverage: a layer to blend
        into a photo. Coordinates as in :meth:`render`."""
        job, _ = self._prepare(vertices, triangles, uv, texture, "textured", (0, 0, 0),
                               View(), int(size))
        if job is None:
            return np.zeros((int(size), int(size), 4), np.uint8)
        job.colours = None
        return self._draw(job)

    def _draw(self, job: _Job) -> np.ndarray:
        with self._lock:
            if self._worker is None:
                self._worker = _GLThread()
                self._finalizer = weakref.finalize(self, self._worker.shutdown)
            future = self._worker.submit(self._worker.render, job)
        return future.result()

    def close(self) -> None:
        """Free the GL context and stop the thread; safe to call twice or at exit."""
        with self._lock:
            finalizer, self._finalizer, self._worker = self._finalizer, None, None
        if finalizer is not None:
            finalizer()

    def __enter__(self) -> MeshRenderer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def _prepare(
        vertices: np.ndarray,
        triangles: np.ndarray,
        uv: np.ndarray | None,
        texture: np.ndarray | None,
        mode: str,
        background: np.ndarray | tuple[int, int, int],
        view: View,
        size: int,
    ) -> tuple[_Job | None, np.ndarray]:
        """Check the inputs and move the mesh into OpenGL camera space (on the caller's
        thread, so the GL thread only does GL work)."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if size < 1:
            raise ValueError(f"size must be positive, got {size}")
        if not view.zoom > 0:
            raise ValueError(f"zoom must be positive, got {view.zoom}")
        backdrop = _background(background, size)
        v = np.asarray(vertices, np.float64)
        if v.ndim != 2 or v.shape[1] != 3 or not np.isfinite(v).all():
            raise ValueError(f"vertices must be finite (N, 3), got shape {v.shape}")
        tri = np.asarray(triangles)
        if tri.ndim != 2 or tri.shape[1] != 3 or not np.issubdtype(tri.dtype, np.integer):
            raise ValueError(f"triangles must be (M, 3) integers, got {tri.shape} {tri.dtype}")
        if tri.size and (tri.min() < 0 or tri.max() >= len(v)):
            raise ValueError("triangles index vertices that do not exist")
        texcoords = tex = None
        if mode == "textured":
            if uv is None or texture is None:
                raise ValueError('mode="textured" needs both uv and texture')
            uv = np.asarray(uv, np.float32)
            if uv.shape != (len(v), 2):
                raise ValueError(f"uv must be ({len(v)}, 2), got {uv.shape}")
            tex = np.asarray(texture)
            if tex.ndim != 3 or tex.shape[2] != 3 or tex.dtype != np.uint8:
                raise ValueError(f"texture must be (H, W, 3) uint8, got {tex.shape} {tex.dtype}")
            # pyrender uploads row 0 of the image at v = 1 (OpenGL's bottom-up rows), while
            # the caller's v = 0 is row 0: flip v.
            texcoords = np.column_stack([uv[:, 0], 1.0 - uv[:, 1]]).astype(np.float32)
        if len(tri) == 0:
            return None, backdrop

        # Image (x right, y down, z away) -> OpenGL (x right, y up, z to the viewer), centred
        # on the frame: a rotation by 180 degrees about x, so the winding is unchanged.
        half = size / 2
        p = np.column_stack([v[:, 0] - half, half - v[:, 1], -v[:, 2]])
        normals = vertex_normals(p, tri)
        rot = _rotation(view)
        if not np.allclose(rot, np.eye(3)):
            centroid = p.mean(axis=0)
            p = (p - centroid) @ rot.T + centroid
            normals = normals @ rot.T
        # The camera sits at z = 0 looking down -z: put the nearest point `pad` in front of it.
        depth = float(np.ptp(p[:, 2]))
        pad = 1.0 + 0.01 * max(depth, size)
        p[:, 2] -= p[:, 2].max() + pad
        colours = None
        if mode != "wireframe":
            shade = lambert(normals).astype(np.float32)
            colours = np.column_stack([shade, shade, shade, np.ones_like(shade)])
        grey = (_SHADED_GREY if mode == "shaded" else _WIRE_GREY) / 255
        job = _Job(
            positions=p.astype(np.float32),
            colours=colours,
            texcoords=texcoords,
            base_colour=(1.0, 1.0, 1.0, 1.0) if mode == "textured" else (grey, grey, grey, 1.0),
            texture=np.ascontiguousarray(tex) if tex is not None else None,
            triangles=tri.astype(np.uint32),
            mode=mode,
            size=size,
            zoom=float(view.zoom),
            znear=pad / 2,
            zfar=depth + 2 * pad,
        )
        return job, backdrop
