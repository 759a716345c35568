"""Which offscreen OpenGL this process uses: EGL after a probe in a child process, else OSMesa.

The platform is fixed when OpenGL is first imported, so it is chosen before pyrender is
imported: ``PYOPENGL_PLATFORM`` if the user set it, else EGL when a probe in a child
process works (a broken driver can abort or hang a process, so the probe must not run in
ours), else OSMesa. The probe costs about 0.4 s, once per process.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

from studio.core.errors import RenderError

EGL_DEBS = "libegl1 libegl-mesa0 libgl1-mesa-dri"
OSMESA_DEBS = "libosmesa6"
INSTALL_HINT = (
    f"Install the Debian packages {EGL_DEBS} (EGL) or {OSMESA_DEBS} (OSMesa): "
    f"sudo apt-get install {EGL_DEBS} {OSMESA_DEBS}"
)

_PROBE_TIMEOUT_S = 60.0

# Run in a child process: create a context the way pyrender's EGL platform does (first EGL
# device, OpenGL 4.1 core, surfaceless) and print the GL renderer.
_EGL_PROBE = """
import ctypes
from OpenGL import EGL as egl, arrays
from OpenGL._opaque import opaque_pointer_cls

def func(name, res, *args):
    addr = egl.eglGetProcAddress(name)
    if not addr:
        return None
    f = ctypes.CFUNCTYPE(res)(addr)
    f.argtypes = args
    return f

device = opaque_pointer_cls("EGLDeviceEXT")
query = func("eglQueryDevicesEXT", egl.EGLBoolean)
get_display = func("eglGetPlatformDisplayEXT", egl.EGLDisplay)
dpy = None
if query is not None and get_display is not None:
    n = egl.EGLint()
    if query(0, None, ctypes.pointer(n)) and n.value > 0:
        devs = (device * n.value)()
        if query(n.value, devs, ctypes.pointer(n)) and n.value > 0:
            dpy = get_display(0x313F, devs[0], None)
if dpy is None:
    dpy = egl.eglGetDisplay(egl.EGL_DEFAULT_DISPLAY)
major, minor = ctypes.c_long(), ctypes.c_long()
assert egl.eglInitialize(dpy, major, minor), "eglInitialize failed"
cfg = arrays.GLintArray.asArray([
    egl.EGL_SURFACE_TYPE, egl.EGL_PBUFFER_BIT, egl.EGL_RED_SIZE, 8, egl.EGL_GREEN_SIZE, 8,
    egl.EGL_BLUE_SIZE, 8, egl.EGL_DEPTH_SIZE, 24, egl.EGL_COLOR_BUFFER_TYPE, egl.EGL_RGB_BUFFER,
    egl.EGL_RENDERABLE_TYPE, egl.EGL_OPENGL_BIT, egl.EGL_CONFORMANT, egl.EGL_OPENGL_BIT,
    egl.EGL_NONE])
configs = (egl.EGLConfig * 1)()
n_cfg = ctypes.c_long()
assert egl.eglChooseConfig(dpy, cfg, configs, 1, n_cfg) and n_cfg.value > 0, "no EGL config"
assert egl.eglBindAPI(egl.EGL_OPENGL_API), "eglBindAPI failed"
attrs = arrays.GLintArray.asArray([
    egl.EGL_CONTEXT_MAJOR_VERSION, 4, egl.EGL_CONTEXT_MINOR_VERSION, 1,
    egl.EGL_CONTEXT_OPENGL_PROFILE_MASK, egl.EGL_CONTEXT_OPENGL_CORE_PROFILE_BIT, egl.EGL_NONE])
ctx = egl.eglCreateContext(dpy, configs[0], egl.EGL_NO_CONTEXT, attrs)
assert ctx, "eglCreateContext failed"
assert egl.eglMakeCurrent(dpy, egl.EGL_NO_SURFACE, egl.EGL_NO_SURFACE, ctx), "eglMakeCurrent"
from OpenGL import GL
print(GL.glGetString(GL.GL_RENDERER).decode(), "|", GL.glGetString(GL.GL_VERSION).decode())
egl.eglDestroyContext(dpy, ctx)
egl.eglTerminate(dpy)
"""

# The same for OSMesa, with the attributes pyrender's OSMesa platform asks for.
_OSMESA_PROBE = """
from OpenGL import GL, arrays
from OpenGL import osmesa as om
attrs = arrays.GLintArray.asArray([
    om.OSMESA_FORMAT, om.OSMESA_RGBA, om.OSMESA_DEPTH_BITS, 24,
    om.OSMESA_PROFILE, om.OSMESA_CORE_PROFILE,
    om.OSMESA_CONTEXT_MAJOR_VERSION, 3, om.OSMESA_CONTEXT_MINOR_VERSION, 3, 0])
ctx = om.OSMesaCreateContextAttribs(attrs, None)
assert ctx, "OSMesaCreateContextAttribs failed"
buf = arrays.GLubyteArray.zeros((8, 8, 4))
assert om.OSMesaMakeCurrent(ctx, buf, GL.GL_UNSIGNED_BYTE, 8, 8), "OSMesaMakeCurrent failed"
print(GL.glGetString(GL.GL_RENDERER).decode(), "|", GL.glGetString(GL.GL_VERSION).decode())
om.OSMesaDestroyContext(ctx)
"""

_PROBES = {"egl": _EGL_PROBE, "osmesa": _OSMESA_PROBE}


@dataclass(frozen=True)
class PlatformChoice:
    """The PyOpenGL platform in use and why, for logs and the About box."""

    name: str  # "egl" | "osmesa" | whatever PYOPENGL_PLATFORM said
    how: str  # "environment" or the probe's report (GL renderer and version)
    probe_s: float  # seconds spent probing (0 when the environment decided)


_platform_lock = threading.Lock()
_platform: PlatformChoice | None = None
_platform_error: str | None = None  # remembered: probing again would fail again


def probe_platform(name: str) -> tuple[bool, str]:
    """Try to create an OpenGL context on ``name`` in a child process: (works, report).

    A child process, because a missing or broken driver can crash, hang or leave PyOpenGL
    bound to the wrong library in the process that tried.
    """
    env = dict(os.environ, PYOPENGL_PLATFORM=name)
    env.pop("DISPLAY", None)  # pyrender also hides DISPLAY so EGL does not pick X11
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _PROBES[name]],
            env=env, capture_output=True, text=True, timeout=_PROBE_TIMEOUT_S, check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, f"probe failed to run: {e}"
    if proc.returncode == 0:
        return True, proc.stdout.strip()
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    return False, lines[-1] if lines else f"probe exited with code {proc.returncode}"


def _load_triton_first() -> None:
    """Load Triton's LLVM before Mesa's, when Triton is installed (torch's CPU wheels
    bring it). Mesa's llvmpipe and Triton each carry an LLVM; loaded in the other order,
    the process crashes (a segmentation fault) the first time torch imports Triton after a
    render, which creating any torch optimiser does. In this order both work. 0.5 s, once."""
    import importlib.util

    if importlib.util.find_spec("triton") is not None:
        with contextlib.suppress(Exception):  # a broken Triton is torch's problem, not ours
            import triton  # noqa: F401


def gl_platform() -> PlatformChoice:
    """Choose the PyOpenGL platform once per process and export it as PYOPENGL_PLATFORM.

    Must run before OpenGL (and so pyrender) is first imported.
    """
    global _platform, _platform_error
    _load_triton_first()
    with _platform_lock:
        if _platform is not None:
            return _platform
        if _platform_error is not None:
            raise RenderError(_platform_error)
        preset = os.environ.get("PYOPENGL_PLATFORM")
        if preset:
            _platform = PlatformChoice(preset, "environment", 0.0)
            return _platform
        if getattr(sys, "frozen", False):  # no interpreter to probe with: trust EGL
            os.environ["PYOPENGL_PLATFORM"] = "egl"
            _platform = PlatformChoice("egl", "frozen app, not probed", 0.0)
            return _platform
        t0 = time.perf_counter()
        failures = []
        for name in ("egl", "osmesa"):
            ok, report = probe_platform(name)
            if ok:
                os.environ["PYOPENGL_PLATFORM"] = name
                _platform = PlatformChoice(name, report, time.perf_counter() - t0)
                return _platform
            failures.append(f"{name}: {report}")
        _platform_error = (
            "3D rendering needs offscreen OpenGL, and neither EGL nor OSMesa works here "
            f"({'; '.join(failures)}). {INSTALL_HINT}"
        )
        raise RenderError(_platform_error)
