"""The command line in hostile surroundings: an index folder that is a file, read-only, someone else's or damaged
on disk, output piped into `head`, nonsense weights. Each ends in one line that names the problem and what to do,
never a traceback, and nothing that is not ours is written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from desktop_search.cli import main
from tests.conftest import REPO, write
from tests.core.test_hostile_input import _unprivileged_preexec


def run(*args, preexec=None, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "desktop_search", *map(str, args)], capture_output=True, text=True,
                          cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=timeout,
                          preexec_fn=preexec)


def one_line_error(res: subprocess.CompletedProcess, *needles: str) -> str:
    assert res.returncode == 1, (res.returncode, res.stdout, res.stderr)
    assert "Traceback" not in res.stderr, res.stderr
    lines = [line for line in res.stderr.splitlines() if line.startswith("desktop-search:")]
    assert len(lines) == 1 and lines[0].startswith("desktop-search: error: "), res.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def docs(tmp_path) -> Path:
    folder = tmp_path / "docs"
    for i in range(12):
        write(folder / f"note{i}.txt", f"Note {i} about harbours, tides and ferries.")
    return folder


def test_index_dir_that_is_a_file(tmp_path, docs):
    not_a_folder = tmp_path / "notes.db"
    not_a_folder.write_text("a user's file")
    for args in (("index", docs, "--keyword-only"), ("watch", docs, "--keyword-only"), ("search", "tides"),
                 ("status",), ("doctor",), ("doctor", "--repair")):
        res = run(*args, "--index-dir", not_a_folder)
        one_line_error(res, str(not_a_folder))
        assert "is a file, not a folder" in res.stderr or "no index at" in res.stderr, (args, res.stderr)
    assert not_a_folder.read_text() == "a user's file"


def test_read_only_index_folder(tmp_path, docs):
    idx = tmp_path / "idx"
    assert run("index", docs, "--keyword-only", "--index-dir", idx).returncode == 0
    write(docs / "new.txt", "A new note about lighthouses.")
    os.unlink(idx / "writer.lock")
    modes = {p: p.stat().st_mode for p in [idx, *idx.rglob("*")]}
    for p in modes:
        p.chmod(0o555 if p.is_dir() else 0o444)
    try:
        probe = tmp_path / "probe"
        probe.write_text("x")
        probe.chmod(0)
        preexec = _unprivileged_preexec(probe)
        res = run("index", docs, "--keyword-only", "--index-dir", idx, preexec=preexec)
        one_line_error(res, "writer.lock", "choose")
        # Reading needs no write access.
        res = run("search", "lighthouses OR tides", "--mode", "keyword", "--index-dir", idx, preexec=preexec)
        assert res.returncode == 0 and "note" in res.stdout, res.stderr
    finally:
        for p, mode in modes.items():
            p.chmod(mode)


def _garble(path: Path, start: float, end: float, byte: bytes) -> None:
    data = bytearray(path.read_bytes())
    a, b = int(len(data) * start), int(len(data) * end)
    data[a:b] = byte * (b - a)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["garbled-pages", "garbled-footer"])
def test_damaged_data_file_is_one_line_pointing_at_doctor(tmp_path, docs, damage):
    idx = tmp_path / "idx"
    assert run("index", docs, "--keyword-only", "--index-dir", idx).returncode == 0
    (data,) = (idx / "lance" / "chunks.lance" / "data").glob("*.lance")
    if damage == "garbled-pages":
        _garble(data, 0.25, 0.5, b"\xff")  # LanceDB: "Encountered corrupt file", or a Rust panic in its runtime
    else:
        _garble(data, 0.97, 1.0, b"\x13")  # "file does not appear to be a Lance file"
    res = run("search", "tides", "--mode", "keyword", "--index-dir", idx)
    # A Rust panic prints its own message before ours; there is no Python traceback and ours is last.
    line = one_line_error(res, "damaged", "doctor --repair")
    assert res.stderr.strip().splitlines()[-1] == line
    # Indexing unchanged files does not read the damaged page; a changed file's old chunks must be deleted.
    write(docs / "note3.txt", "Note 3 rewritten about lighthouses.")
    res = run("index", docs, "--keyword-only", "--index-dir", idx)
    assert "Traceback" not in res.stderr
    if res.returncode:
        one_line_error(res, "damaged", "doctor --repair")
    res = run("doctor", "--repair", "--index-dir", idx)
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stdout + res.stderr
    assert run("index", docs, "--keyword-only", "--index-dir", idx).returncode == 0
    res = run("search", "tides", "--mode", "keyword", "-k", "20", "--index-dir", idx)
    assert res.returncode == 0 and res.stdout.count("note") == 11, res.stdout


def test_output_piped_into_head_ends_quietly(tmp_path, docs):
    idx = tmp_path / "idx"
    assert run("index", docs, "--keyword-only", "--index-dir", idx).returncode == 0
    queries = tmp_path / "queries.txt"
    queries.write_text("tides\n" * 3000)
    with subprocess.Popen([sys.executable, "-m", "desktop_search", "search", "--queries", str(queries), "--mode",
                           "keyword", "--index-dir", str(idx)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}) as proc:
        assert proc.stdout.readline()
        proc.stdout.close()  # what `head -1` does after its line
        err = proc.stderr.read().decode()
        assert proc.wait(60) == 141
    assert err == "", err


@pytest.mark.parametrize("weights", ["nan,0.2,0.4", "0.4,inf,0.4", "-inf,1,1", "NaN,NaN,NaN"])
def test_nan_and_infinite_weights_are_refused(capsys, weights):
    code = main(["search", "x", f"--weights={weights}"])
    err = capsys.readouterr().err
    assert code == 1 and "weights must be three non-negative numbers" in err


def test_json_output_is_strict_json(tmp_path, docs, capsys):
    from desktop_search.cli.common import json_line

    assert json.loads(json_line({"score": float("nan"), "scores": {"bm25": float("inf"), "dense": 0.5}})) == {
        "score": None, "scores": {"bm25": None, "dense": 0.5}}
    idx = tmp_path / "idx"
    assert main(["index", str(docs), "--keyword-only", "--index-dir", str(idx)]) == 0
    capsys.readouterr()
    assert main(["search", "tides", "--mode", "keyword", "--json", "--index-dir", str(idx)]) == 0
    out = json.loads(capsys.readouterr().out, parse_constant=lambda c: pytest.fail(f"bare {c} in --json output"))
    assert out["hits"] and all(h["offline"] is False for h in out["hits"])


def test_search_says_the_model_is_unverified_not_missing(tmp_path, docs, tiny_model_dir):
    import shutil

    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    for marker in model.glob("*verif*"):
        marker.unlink() if marker.is_file() else shutil.rmtree(marker)
    idx = tmp_path / "idx"
    assert run("index", docs, "--keyword-only", "--index-dir", idx).returncode == 0
    res = run("search", "tides", "--index-dir", idx, "--model-dir", model)
    assert res.returncode == 0 and "not been verified" in res.stderr and "no model" not in res.stderr, res.stderr
    res = run("status", "--index-dir", idx, "--model-dir", model)
    assert "not been verified" in res.stdout and "not installed" not in res.stdout, res.stdout
