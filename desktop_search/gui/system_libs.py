"""Before the window opens on Linux/X11: are the system libraries Qt's xcb platform plugin needs installed?

Without them Qt prints "could not load the Qt platform plugin xcb" and aborts, which names nothing a user can
install (except for libxcb-cursor0). A fresh Debian/Ubuntu desktop lacks some of them (``libxcb-icccm4`` and
``libxcb-keysyms1`` at least), so the window checks first and names every missing library and its package.
"""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path
from typing import Mapping

# What PySide6's libqxcb.so and libQt6XcbQpa.so.6 link against (ldd), plus libxcb-cursor, which Qt >= 6.5 loads.
XCB_SONAMES = (
    "libxcb.so.1", "libX11-xcb.so.1", "libxcb-cursor.so.0", "libxcb-icccm.so.4", "libxcb-image.so.0",
    "libxcb-keysyms.so.1", "libxcb-randr.so.0", "libxcb-render.so.0", "libxcb-render-util.so.0",
    "libxcb-shape.so.0", "libxcb-shm.so.0", "libxcb-sync.so.1", "libxcb-util.so.1", "libxcb-xfixes.so.0",
    "libxcb-xkb.so.1", "libxkbcommon.so.0", "libxkbcommon-x11.so.0",
)


def debian_package(soname: str) -> str:
    """``libxcb-icccm.so.4`` -> ``libxcb-icccm4``; ``libxkbcommon-x11.so.0`` -> ``libxkbcommon-x11-0``."""
    base, _, version = soname.partition(".so")
    version = version.lstrip(".").split(".")[0]
    return base.lower() + ("-" if base[-1:].isdigit() else "") + version


def uses_xcb(env: Mapping[str, str] | None = None) -> bool:
    """Whether Qt will pick its xcb plugin here (Linux/BSD, no other platform asked for, not a Wayland session)."""
    env = os.environ if env is None else env
    if not sys.platform.startswith(("linux", "freebsd")):
        return False
    platform = env.get("QT_QPA_PLATFORM", "").split(":")[0].split(";")[0].strip()
    if platform:
        return platform == "xcb"
    return not (env.get("WAYLAND_DISPLAY") and env.get("XDG_SESSION_TYPE") == "wayland")


def xcb_plugin() -> Path | None:
    try:
        import PySide6
    except ImportError:
        return None
    path = Path(PySide6.__file__).parent / "Qt" / "plugins" / "platforms" / "libqxcb.so"
    return path if path.is_file() else None


def missing_libraries(sonames=XCB_SONAMES, plugin: Path | None = None) -> list[str]:
    """The shared libraries that cannot be loaded: the known list first, then whatever else the plugin needs."""
    missing = []
    for name in sonames:
        try:
            ctypes.CDLL(name)
        except OSError:
            missing.append(name)
    if plugin is not None and not missing:
        try:
            ctypes.CDLL(str(plugin))
        except OSError as e:  # "libfoo.so.1: cannot open shared object file: ..." names the first one missing
            first = str(e).split(":")[0].strip()
            missing.append(first if first.startswith("lib") else str(e))
    return missing


def problem(env: dict[str, str] | None = None) -> str | None:
    """One line naming the missing system libraries and the command that installs them, or None."""
    if not uses_xcb(env):
        return None
    missing = missing_libraries(XCB_SONAMES, plugin=xcb_plugin())
    if not missing:
        return None
    packages = " ".join(debian_package(m) for m in missing if m.startswith("lib"))
    return (
        f"the window cannot open: Qt's X11 (xcb) platform needs system libraries that are not installed: "
        f"{', '.join(missing)}. On Debian/Ubuntu: sudo apt-get install {packages} "
        "(other distributions: the packages that provide these files)"
    )
