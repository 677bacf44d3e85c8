"""Importing mujoco with a headless renderer where one exists; every task that uses mujoco imports it here."""

from __future__ import annotations

import ctypes
import os
import sys


def prefer_egl() -> None:
    """Choose mujoco's headless EGL backend on Linux where libEGL loads, unless MUJOCO_GL is set.

    mujoco reads MUJOCO_GL once, at its first import, so this runs when this module is imported (and
    again before any import of mujoco here). Its default backend (GLFW) needs a display, and
    MUJOCO_GL=egl without libEGL makes `import mujoco` itself fail (mujoco 4.0)."""
    if "mujoco" in sys.modules or "MUJOCO_GL" in os.environ or not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL("libEGL.so.1")
    except OSError:
        return
    os.environ["MUJOCO_GL"] = "egl"


def import_mujoco():
    """The mujoco module, imported on first use (a task that only simulates needs no OpenGL). A MUJOCO_GL
    backend whose libraries are missing breaks mujoco's import with whatever its OpenGL binding raises: an
    ImportError that names the backend and the fix instead."""
    prefer_egl()
    try:
        import mujoco
    except Exception as exc:  # osmesa or glfw without their libraries: AttributeError, OSError, ImportError...
        backend = os.environ.get("MUJOCO_GL", "its default (glfw)")
        raise ImportError(
            f"mujoco cannot start with the rendering backend MUJOCO_GL={backend} ({type(exc).__name__}: {exc}); "
            "set MUJOCO_GL=egl (headless, needs libEGL) or install that backend's OpenGL libraries"
        ) from None
    return mujoco


prefer_egl()
