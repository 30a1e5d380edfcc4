"""Nothing leaves the machine, and nothing is written outside the app's own folders and the temp dir.

The real program (index with the model, through the int8 ONNX Runtime path; hybrid search; the window's start)
runs in child processes whose every Python process - the PDF workers included - has the network blocked at the
socket level by an audit hook that records *attempts* (connect, sendto, DNS lookups through getaddrinfo and
friends), not only failures. Where ``strace`` can trace, native code is watched too (ONNX Runtime's telemetry
uploader, LanceDB's runtime, Qt): every connect/sendto system call of an IP socket, and every file created or
written, is checked. The environment is scrubbed of the opt-outs the app must set itself (ONNX Runtime's
``ORT_DISABLE_TELEMETRY``, the hub's ``HF_HUB_DISABLE_TELEMETRY`` ...): if the app forgets one, ONNX Runtime
writes its device id and event database under ``~/.cache/Microsoft/DeveloperTools`` and this test fails.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, make_pdf, write

_BLOCKER = '''
import os, sys

_LOG = os.environ.get("PRIVACY_TEST_LOG")
_NET = {"socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex", "socket.gethostbyaddr",
        "socket.getnameinfo", "socket.sendto", "socket.sendmsg"}


def _hook(event, args):
    if not event.startswith("socket."):
        return
    blocked = event in _NET
    if event == "socket.connect":
        blocked = getattr(args[0], "family", None) not in (getattr(__import__("socket"), "AF_UNIX", None),)
    if event == "socket.bind":  # a loopback bind is a capability probe (urllib3 checks for IPv6 so), not a connection
        address = args[1]
        host = address[0] if isinstance(address, tuple) else ""
        blocked = bool(host) and host not in ("127.0.0.1", "::1", "localhost")
    if blocked:
        with open(_LOG, "a") as fh:
            fh.write(f"{os.getpid()} {event} {args[1:] if event.startswith('socket.connect') else args!r}\\n")
        raise PermissionError("network access blocked by the privacy test: " + event)


if _LOG:
    sys.addaudithook(_hook)
'''

# Opt-outs and redirections the app must not rely on the caller for.
_SCRUB = ("ORT_DISABLE_TELEMETRY", "HF_HUB_DISABLE_TELEMETRY", "DO_NOT_TRACK", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE",
          "HF_DATASETS_OFFLINE", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "HF_HOME", "TORCH_HOME",
          "DISABLE_TELEMETRY", "ANONYMIZED_TELEMETRY", "GITHUB_ACTIONS", "TF_BUILD", "GITLAB_CI", "CI")


def _strace() -> list[str] | None:
    """A strace command line that works here (ptrace allowed), or None: the audit hook still runs without it."""
    exe = shutil.which("strace")
    if exe is None:
        return None
    for extra in (["--seccomp-bpf"], []):
        cmd = [exe, "-f", "-qq", *extra, "-e", "trace=connect,sendto,sendmsg,openat,open,creat,mkdir,mkdirat,"
               "rename,renameat,renameat2,link,linkat,symlink,symlinkat"]
        if subprocess.run([*cmd, "-o", os.devnull, "true"], capture_output=True).returncode == 0:
            return cmd
    return None


_WRITE_FLAGS = re.compile(r"O_WRONLY|O_RDWR|O_CREAT|O_TRUNC|O_APPEND")
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')


def _unescape(s: str) -> str:
    return bytes(s, "utf-8").decode("unicode_escape").encode("latin-1").decode("utf-8", "replace")


def _trace_findings(log: Path, allowed: list[str]) -> tuple[list[str], list[str]]:
    """(network system calls on IP sockets, paths created or written outside ``allowed``) from strace logs."""
    net: list[str] = []
    writes: list[str] = []
    for f in log.parent.glob(log.name + "*"):
        for line in f.read_text(errors="replace").splitlines():
            call = re.search(r"\b(connect|sendto|sendmsg|openat|open|creat|mkdirat|mkdir|renameat2|renameat|rename|"
                             r"linkat|link|symlinkat|symlink)\(", line)
            if call is None:
                continue
            name = call.group(1)
            if name in ("connect", "sendto", "sendmsg"):
                if "AF_INET" in line or "AF_INET6" in line or re.search(r"nscd|resolve|/run/systemd", line):
                    net.append(line)
                continue
            if name in ("openat", "open") and not _WRITE_FLAGS.search(line):
                continue
            if "= -1" in line:
                continue  # failed: nothing was written
            paths = [_unescape(p) for p in _QUOTED.findall(line)]
            targets = paths[-1:] if name in ("rename", "renameat", "renameat2", "link", "linkat", "symlink",
                                            "symlinkat") else paths[:1]
            for p in targets:
                if p.startswith("/") and not any(p == a or p.startswith(a.rstrip("/") + "/") for a in allowed):
                    writes.append(line)
    return net, writes


def test_index_search_and_window_make_no_connection_attempt_and_write_only_their_own_folders(
    tmp_path, tiny_model_dir
):
    home = tmp_path / "home"
    tmp = tmp_path / "tmp"
    blocker = tmp_path / "blocker"
    for d in (home, tmp, blocker):
        d.mkdir()
    (blocker / "sitecustomize.py").write_text(_BLOCKER)
    app = {"DESKTOP_SEARCH_DATA_DIR": home / "app-data", "DESKTOP_SEARCH_CONFIG_DIR": home / "app-config",
           "DESKTOP_SEARCH_CACHE_DIR": home / "app-cache", "DESKTOP_SEARCH_INDEX_DIR": home / "app-data" / "index",
           "DESKTOP_SEARCH_MODEL_DIR": home / "app-data" / "model"}
    shutil.copytree(tiny_model_dir, app["DESKTOP_SEARCH_MODEL_DIR"])
    docs = tmp_path / "docs"
    write(docs / "notes.txt", "Field notes about salt marshes and herons.")
    write(docs / "menu.md", "# Menu\nLentil soup, rye bread, apple cake.")
    make_pdf(docs / "report.pdf", ["A report about tidal energy.", "Second page on turbines."])
    before = {p: p.stat().st_mtime_ns for p in docs.rglob("*")}
    log = tmp_path / "net.log"
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB and not k.startswith("DESKTOP_SEARCH_")}
    env.update({k: str(v) for k, v in app.items()})
    env.update(HOME=str(home), TMPDIR=str(tmp), TMP=str(tmp), TEMP=str(tmp), PRIVACY_TEST_LOG=str(log),
               PYTHONPATH=os.pathsep.join([str(blocker), str(REPO)]), QT_QPA_PLATFORM="offscreen")
    env.setdefault("DESKTOP_SEARCH_SHARED_CORPUS", "")
    strace = _strace()
    trace = tmp_path / "trace" / "st"
    trace.parent.mkdir()
    runs = [["index", str(docs)], ["search", "herons marshes", "--json"], ["search", "tidal turbines", "--json"],
            ["gui", "--quit-after", "3"]]
    for i, args in enumerate(runs):
        cmd = [sys.executable, "-m", "desktop_search", *args]
        if strace:
            cmd = [*strace, "-o", f"{trace}.{i}", *cmd]
        res = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
        assert res.returncode == 0, (args, res.stdout[-2000:], res.stderr[-4000:])
        if args[0] == "search":
            hits = json.loads(res.stdout)["hits"]
            assert hits and hits[0]["scores"]["dense"] is not None, res.stdout  # the model really ran
    # The blocker was really in place in every Python process (a lookup it must record and refuse).
    probe = subprocess.run([sys.executable, "-c", "import socket; socket.getaddrinfo('example.org', 80)"],
                           capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert probe.returncode != 0 and "blocked by the privacy test" in probe.stderr
    attempts = log.read_text().splitlines()
    assert len(attempts) == 1 and "example.org" in attempts[0], attempts

    # Nothing under HOME but the app's own folders (ONNX Runtime's ~/.cache/Microsoft/DeveloperTools device id and
    # event database, the hub's caches, Qt's or torch's settings would show up here).
    own = [Path(v) for v in app.values()]
    stray = [str(p) for p in home.rglob("*") if p.is_file() and not any(p.is_relative_to(o) for o in own)]
    assert not stray, stray
    assert {p: p.stat().st_mtime_ns for p in docs.rglob("*")} == before, "a document was written"

    if strace:
        allowed = [str(home / "app-data"), str(home / "app-config"), str(home / "app-cache"), str(tmp), "/dev/null",
                   "/dev/shm", "/dev/tty", "/dev/pts", "/proc/self", f"/proc/{os.getpid()}", str(trace.parent),
                   str(tmp_path / "net.log")]
        net, writes = _trace_findings(trace, allowed)
        assert not net, net[:10]
        assert not writes, writes[:10]
