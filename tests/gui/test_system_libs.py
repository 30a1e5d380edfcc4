"""A fresh Linux desktop without Qt's xcb libraries gets one line naming them and the packages to install."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from desktop_search.cli import main
from desktop_search.gui import system_libs


def test_debian_package_names_follow_the_soname():
    assert system_libs.debian_package("libxcb-icccm.so.4") == "libxcb-icccm4"
    assert system_libs.debian_package("libxcb-keysyms.so.1") == "libxcb-keysyms1"
    assert system_libs.debian_package("libxkbcommon-x11.so.0") == "libxkbcommon-x11-0"
    assert system_libs.debian_package("libX11-xcb.so.1") == "libx11-xcb1"


def test_only_an_x11_session_is_checked():
    assert system_libs.uses_xcb({"QT_QPA_PLATFORM": "xcb"})
    assert not system_libs.uses_xcb({"QT_QPA_PLATFORM": "offscreen"})
    assert not system_libs.uses_xcb({"WAYLAND_DISPLAY": "wayland-0", "XDG_SESSION_TYPE": "wayland"})
    assert system_libs.uses_xcb({"DISPLAY": ":0"})


def test_a_library_the_plugin_needs_is_named_even_if_not_in_the_known_list(tmp_path):
    gcc = shutil.which("gcc") or shutil.which("cc")
    assert gcc, "a C compiler is part of the test machine"
    (tmp_path / "stub.c").write_text("int ds_stub(void) { return 1; }\n")
    (tmp_path / "plugin.c").write_text("int ds_stub(void);\nint ds_plugin(void) { return ds_stub(); }\n")
    subprocess.run([gcc, "-shared", "-fPIC", "-o", tmp_path / "libds-gone-test.so.7", tmp_path / "stub.c",
                    "-Wl,-soname,libds-gone-test.so.7"], check=True)
    subprocess.run([gcc, "-shared", "-fPIC", "-o", tmp_path / "libqfake.so", tmp_path / "plugin.c",
                    tmp_path / "libds-gone-test.so.7"], check=True)
    (tmp_path / "libds-gone-test.so.7").unlink()  # as on a machine without the package
    assert system_libs.missing_libraries((), plugin=tmp_path / "libqfake.so") == ["libds-gone-test.so.7"]


def test_the_window_command_names_missing_libraries_in_one_line(capsys, monkeypatch):
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    monkeypatch.setattr(system_libs, "XCB_SONAMES", ("libxcb-ds-missing-test.so.4", "libc.so.6"))
    code = main(["gui"])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1
    assert "libxcb-ds-missing-test.so.4" in err and "sudo apt-get install libxcb-ds-missing-test4" in err
    assert "libc.so.6" not in err
