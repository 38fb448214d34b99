"""Importing MuJoCo headlessly, and one reusable offscreen camera renderer.

`MUJOCO_GL` must be set before `mujoco` is first imported; `mbrl_ros.envs`
sets it to "egl" when it is unset (a value you set yourself wins). Where libEGL
cannot be loaded at all it is left unset, so that mujoco still imports and
joints-only envs (render_image=False) work; the first rendered frame then raises
an error naming the fix.
"""
from __future__ import annotations

import ctypes
import os
import sys
import threading


def _egl_loadable() -> bool:
    for name in ("libEGL.so.1", "libEGL.so"):
        try:
            ctypes.CDLL(name)
            return True
        except OSError:
            continue
    return False


if "MUJOCO_GL" not in os.environ and sys.platform.startswith("linux") and _egl_loadable():
    os.environ["MUJOCO_GL"] = "egl"  # elsewhere mujoco's platform default (CGL, WGL/GLFW) is right

from typing import Optional, Union  # noqa: E402

import numpy as np  # noqa: E402

GL_FIX = (
    "MuJoCo could not open an OpenGL context for offscreen rendering "
    "(MUJOCO_GL={gl!r}). Fix: set MUJOCO_GL=egl and install libegl1 + Mesa "
    "(apt install libegl1 libgl1-mesa-dri), or use software rendering with "
    "MUJOCO_GL=osmesa (apt install libosmesa6). MUJOCO_GL must be set before "
    "mujoco is first imported."
)
NO_IMAGE_HINT = " Or pass render_image=False for joints-only observations."

try:
    import mujoco  # noqa: E402
except Exception as exc:  # noqa: BLE001 - the GL backend is loaded at import time
    if isinstance(exc, ModuleNotFoundError) and exc.name == "mujoco":  # not a GL problem
        raise ModuleNotFoundError(f"{exc}: install it with `pip install mujoco`, or run ./mbrl.sh setup, which "
                                  "installs everything into .venv/", name="mujoco") from exc
    raise ImportError(GL_FIX.format(gl=os.environ.get("MUJOCO_GL")) + f" (import error: {exc})") from exc


def parse_image_size(image_size: Union[int, tuple, list]) -> tuple[int, int]:
    """64 -> (64, 64); (H, W) -> (H, W)."""
    if isinstance(image_size, (int, np.integer)):
        h = w = int(image_size)
    else:
        h, w = (int(s) for s in image_size)
    if h <= 0 or w <= 0:
        raise ValueError(f"image_size must be positive, got {image_size!r}")
    return h, w


class CameraEnvMixin:
    """`render_camera`, gymnasium's `render` and `close` for an env that keeps its
    `CameraRenderer` in `self._camera` and its `MjData` in `self.data`."""

    def render_camera(self) -> np.ndarray:
        """uint8[H, W, 3] image of the current state from the env's camera."""
        return self._camera.render(self.data)

    def render(self):
        if self.render_mode == "rgb_array":
            return self.render_camera()
        return None

    def close(self):
        self._camera.close()


class CameraRenderer:
    """One `mujoco.Renderer` for one camera, created on first use and then reused.

    Rendering is only done when `render()` is called. With EGL (the default) the GL
    context is released after every frame, so any thread may call `render()` (calls are
    serialised by a lock); with other backends render from one thread. Do not step the
    physics of the same MjData while a frame is being rendered.
    """

    def __init__(self, model: "mujoco.MjModel", height: int, width: int,
                 camera: Union[int, str, "mujoco.MjvCamera"] = -1, fast: bool = True):
        self.model = model
        self.height, self.width = int(height), int(width)
        self.camera = camera
        self.fast = fast
        self._renderer: Optional[mujoco.Renderer] = None
        self._option = mujoco.MjvOption()
        self._lock = threading.Lock()
        self._release = _egl_release if os.environ.get("MUJOCO_GL", "").lower() == "egl" else None

    def _open(self) -> "mujoco.Renderer":
        vis = self.model.vis
        vis.global_.offwidth = max(int(vis.global_.offwidth), self.width)
        vis.global_.offheight = max(int(vis.global_.offheight), self.height)
        if self.fast:
            # Multisampling and shadow maps dominate software (llvmpipe) rendering time.
            vis.quality.offsamples = 0
            vis.quality.shadowsize = 0
            self.model.light_castshadow[:] = 0
        try:
            renderer = mujoco.Renderer(self.model, self.height, self.width)
            if self._release is not None:
                self._release()
            return renderer
        except Exception as exc:  # noqa: BLE001 - GL failures surface as several types
            raise RuntimeError(
                GL_FIX.format(gl=os.environ.get("MUJOCO_GL")) + NO_IMAGE_HINT + f" (error: {exc})"
            ) from exc

    def render(self, data: "mujoco.MjData") -> np.ndarray:
        """RGB uint8[H, W, 3] of the current state (a new array each call)."""
        with self._lock:
            if self._renderer is None:
                self._renderer = self._open()
            self._renderer.update_scene(data, camera=self.camera, scene_option=self._option)
            try:
                return self._renderer.render()  # makes the context current in this thread
            finally:
                if self._release is not None:
                    self._release()

    def close(self) -> None:
        with self._lock:
            if self._renderer is not None:
                try:
                    self._renderer.close()
                finally:
                    self._renderer = None


def _egl_release() -> None:
    """Make no EGL context current in this thread, so another thread can take ours."""
    from mujoco import egl

    if egl.EGL_DISPLAY is not None:
        egl.EGL.eglMakeCurrent(egl.EGL_DISPLAY, egl.EGL.EGL_NO_SURFACE, egl.EGL.EGL_NO_SURFACE,
                               egl.EGL.EGL_NO_CONTEXT)
