"""Model setup: resumable download from a local hub stand-in, SHA-256 verification, import, status, errors.

Every download goes over real HTTP to tests/model_server.py on 127.0.0.1, serving the session's tiny model with
the faults a user meets (dropped connections, corrupted bytes, 503, 404/403, a killed process, no network).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from desktop_search.cli import main
from desktop_search.core import models
from desktop_search.core.models import MARKER, Manifest, ModelCancelled, ModelError
from desktop_search.formatting import format_bytes
from tests.conftest import REPO
from tests.model_server import ModelServer

REPO_ID, REVISION = "test/tiny-bge-m3", "0" * 40
WEIGHTS = "pytorch_model.bin"


@pytest.fixture(autouse=True)
def _no_proxy_or_mirror_from_the_environment(monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy",
                 "HF_ENDPOINT", "DESKTOP_SEARCH_HF_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture(scope="session")
def manifest_path(tiny_model_dir) -> Path:
    return tiny_model_dir / "manifest.json"  # written by the tiny_model_dir fixture


@pytest.fixture(scope="session")
def manifest(manifest_path) -> Manifest:
    return Manifest.load(manifest_path)


@pytest.fixture
def server(tiny_model_dir):
    with ModelServer(tiny_model_dir, REPO_ID, REVISION) as srv:
        yield srv


def cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_same_files(model_dir: Path, src: Path, manifest: Manifest) -> None:
    for f in manifest.files:
        assert (model_dir / f.path).read_bytes() == (src / f.path).read_bytes(), f.path
    assert not list(model_dir.rglob("*.part")), "partial files left behind"


def free_port() -> int:
    with socket.socket() as s:  # bound then closed: nothing listens there
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def flip_byte(path: Path, offset: int) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        b = fh.read(1)
        fh.seek(offset)
        fh.write(bytes([b[0] ^ 0xFF]))


# 1 ----------------------------------------------------------------------------------------------------
def test_download_gives_identical_verified_files_that_the_encoder_loads(server, manifest, tiny_model_dir, tmp_path):
    from desktop_search.core.encoder import Encoder, model_problem

    dest = tmp_path / "model"
    events: list[models.TransferProgress] = []
    models.download_model(manifest, dest, endpoint=server.url, progress=events.append)

    assert_same_files(dest, tiny_model_dir, manifest)
    marker = json.loads((dest / MARKER).read_text())
    assert (marker["repo"], marker["revision"]) == (REPO_ID, REVISION)
    assert {f["path"]: f["sha256"] for f in marker["files"]} == {f.path: f.sha256 for f in manifest.files}
    assert models.verification_problem(dest) is None and model_problem(dest) is None
    # progress: every file seen downloading, bytes only grow, the last report says done with everything
    assert {e.file for e in events if e.phase == "download"} == {f.path for f in manifest.files}
    done = [e.bytes_done for e in events]
    assert done == sorted(done) and events[-1].phase == "done" and events[-1].bytes_done == manifest.total_bytes()
    assert len(server.log) == len(manifest.files)

    enc = Encoder(dest, "cpu")
    assert enc.encode_query("Hauptstadt Deutschlands").dense.shape == (1, enc.dim)

    # files already there and matching are not fetched again: with the marker (no hashing) and without it
    server.clear_log()
    models.download_model(manifest, dest, endpoint=server.url)
    (dest / MARKER).unlink()
    models.download_model(manifest, dest, endpoint=server.url)
    assert server.log == []
    assert models.verification_problem(dest) is None


# 2 ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("ignore_range", [False, True], ids=["range", "server-without-range"])
def test_a_dropped_connection_resumes_where_it_was_cut(server, manifest, tiny_model_dir, tmp_path, ignore_range):
    cut = 1_000_003
    server.faults.cut_after[WEIGHTS] = cut
    server.faults.ignore_range = ignore_range
    dest = tmp_path / "model"
    models.download_model(manifest, dest, endpoint=server.url, backoff_s=0.01)

    first, second = server.requests_for(WEIGHTS)
    assert first.range_start is None and first.bytes_sent == cut
    assert second.range_start == cut  # resumed from exactly the byte where the line dropped
    # a server that ignores Range answers 200 with the whole file; the part is then rewritten from 0
    assert second.status == (200 if ignore_range else 206)
    assert_same_files(dest, tiny_model_dir, manifest)
    assert models.verification_problem(dest) is None


# 3 ----------------------------------------------------------------------------------------------------
def test_a_killed_download_resumes_in_a_new_process(server, manifest_path, manifest, tiny_model_dir, tmp_path):
    dest = tmp_path / "model"
    part = dest / (WEIGHTS + ".part")
    server.faults.throttle_bps[WEIGHTS] = 200_000  # ~20 s for the weights: plenty of time to kill it mid-file
    cmd = [sys.executable, "-m", "desktop_search", "model", "download", "--endpoint", server.url,
           "--manifest", str(manifest_path), "--model-dir", str(dest)]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not (part.is_file() and part.stat().st_size >= 100_000):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the download never started"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    kept = part.stat().st_size
    assert 0 < kept < (tiny_model_dir / WEIGHTS).stat().st_size
    assert not (dest / MARKER).exists()

    server.faults.throttle_bps.clear()
    server.clear_log()
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert server.requests_for(WEIGHTS)[0].range_start == kept
    assert "model ready" in done.stdout and "ETA" in done.stderr
    assert_same_files(dest, tiny_model_dir, manifest)
    assert models.verification_problem(dest) is None


# 4 ----------------------------------------------------------------------------------------------------
def test_a_corrupted_file_is_deleted_and_fetched_once_more(server, manifest, tiny_model_dir, tmp_path):
    server.faults.corrupt_once.add("tokenizer.json")
    dest = tmp_path / "model"
    models.download_model(manifest, dest, endpoint=server.url)
    assert [r.range_start for r in server.requests_for("tokenizer.json")] == [None, None]  # whole file again
    assert_same_files(dest, tiny_model_dir, manifest)
    assert models.verification_problem(dest) is None


def test_a_file_corrupted_every_time_is_named_with_both_hashes_and_nothing_is_marked(server, manifest, tmp_path):
    server.faults.corrupt_always.add("tokenizer.json")
    dest = tmp_path / "model"
    expected = next(f.sha256 for f in manifest.files if f.path == "tokenizer.json")
    with pytest.raises(ModelError) as info:
        models.download_model(manifest, dest, endpoint=server.url)
    msg = str(info.value)
    assert "tokenizer.json" in msg and expected in msg and "\n" not in msg
    (bad,) = info.value.bad_files
    assert bad.path == "tokenizer.json" and bad.expected == expected
    assert len(bad.actual) == 64 and bad.actual != expected
    assert bad.actual in msg
    assert len(server.requests_for("tokenizer.json")) == 2  # fetched again exactly once
    assert not (dest / MARKER).exists() and not (dest / "tokenizer.json").exists()
    assert not (dest / "tokenizer.json.part").exists()
    assert models.verification_problem(dest) is not None


# 5 ----------------------------------------------------------------------------------------------------
def test_import_names_a_bad_file_and_marks_only_a_good_copy(capsys, manifest_path, manifest, tiny_model_dir, tmp_path):
    stick = tmp_path / "usb"
    shutil.copytree(tiny_model_dir, stick)
    (stick / MARKER).unlink()  # the copy on the stick vouches for nothing
    (stick / "notes.txt").write_text("not part of the model")
    flip_byte(stick / "sparse_linear.pt", 100)
    dest = tmp_path / "model"

    code, out, err = cli(capsys, "model", "import", stick, "--manifest", manifest_path, "--model-dir", dest)
    expected = next(f.sha256 for f in manifest.files if f.path == "sparse_linear.pt")
    assert code == 1 and "Traceback" not in err
    assert str(stick / "sparse_linear.pt") in err and expected in err and sha(stick / "sparse_linear.pt") in err
    assert not (dest / MARKER).exists() and not (dest / "sparse_linear.pt").exists()
    assert not (dest / "notes.txt").exists()
    assert not list(dest.glob("*.importing"))

    shutil.copy2(tiny_model_dir / "sparse_linear.pt", stick / "sparse_linear.pt")
    code, out, err = cli(capsys, "model", "import", stick, "--manifest", manifest_path, "--model-dir", dest)
    assert code == 0, err
    assert_same_files(dest, tiny_model_dir, manifest)
    assert models.verification_problem(dest) is None and not (dest / "notes.txt").exists()


def test_import_reads_a_hugging_face_cache_folder(manifest, tiny_model_dir, tmp_path):
    cache = tmp_path / "models--test--tiny-bge-m3"
    shutil.copytree(tiny_model_dir, cache / "snapshots" / REVISION)
    dest = tmp_path / "model"
    assert models.import_model(cache, manifest, dest) == []
    assert models.verification_problem(dest) is None


# 6 ----------------------------------------------------------------------------------------------------
def test_verify_names_each_tampered_file_and_the_encoder_refuses_it(
    capsys, manifest_path, manifest, tiny_model_dir, tmp_path
):
    from desktop_search.core.encoder import Encoder, ModelUnavailable

    dest = tmp_path / "model"
    shutil.copytree(tiny_model_dir, dest)
    code, out, err = cli(capsys, "model", "verify", "--manifest", manifest_path, "--model-dir", dest)
    assert code == 0 and "model verified" in out, err

    flip_byte(dest / WEIGHTS, 4096)
    problem = models.verification_problem(dest)
    assert problem and "not been verified" in problem and WEIGHTS in problem
    with pytest.raises(ModelUnavailable, match="not been verified"):
        Encoder(dest, "cpu")

    (dest / "tokenizer_config.json").unlink()
    code, out, err = cli(capsys, "model", "verify", "--manifest", manifest_path, "--model-dir", dest)
    expected = {f.path: f.sha256 for f in manifest.files}
    assert code == 1 and "Traceback" not in err
    assert f"{dest / WEIGHTS}: expected sha256 {expected[WEIGHTS]}, actual {sha(dest / WEIGHTS)}" in err
    tok = "tokenizer_config.json"
    assert f"{dest / tok}: expected sha256 {expected[tok]}, actual missing" in err
    assert "2 model file(s)" in err and err.strip().splitlines()[-1].startswith("desktop-search: error:")
    assert not (dest / MARKER).exists()


def test_a_weights_file_dropped_in_after_verification_is_not_loaded(tiny_model_dir, tmp_path):
    from desktop_search.core.encoder import model_problem

    dest = tmp_path / "model"
    shutil.copytree(tiny_model_dir, dest)
    assert model_problem(dest) is None
    (dest / "model.safetensors").write_bytes(b"unverified")  # transformers would prefer it over the .bin
    assert "model.safetensors is not covered" in model_problem(dest)


# 7 ----------------------------------------------------------------------------------------------------
def test_a_busy_server_is_retried_with_backoff(server, manifest, tiny_model_dir, tmp_path):
    server.faults.fail_first = 2
    dest = tmp_path / "model"
    t0 = time.monotonic()
    models.download_model(manifest, dest, endpoint=server.url, backoff_s=0.05)
    assert [r.status for r in server.log[:3]] == [503, 503, 200]
    assert time.monotonic() - t0 >= 0.05 + 0.1  # backoff doubles: 0.05 s, then 0.1 s
    assert_same_files(dest, tiny_model_dir, manifest)


def test_a_server_that_stays_busy_gives_up_after_the_retries(server, manifest, tmp_path):
    server.faults.fail_first = 100
    with pytest.raises(ModelError, match=r"failed after 2 retries: HTTP 503"):
        models.download_model(manifest, tmp_path / "model", endpoint=server.url, retries=2, backoff_s=0.01)
    assert len(server.log) == 3


# 8 ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("via_proxy", [False, True], ids=["endpoint", "proxy"])
def test_an_unreachable_endpoint_or_proxy_is_one_actionable_line(capsys, manifest_path, tmp_path, via_proxy):
    dead = f"http://127.0.0.1:{free_port()}"
    endpoint, extra = ("http://127.0.0.1:9", ["--proxy", dead]) if via_proxy else (dead, [])
    code, out, err = cli(capsys, "model", "download", "--endpoint", endpoint, *extra,
                         "--manifest", manifest_path, "--model-dir", tmp_path / "model")
    last = err.strip().splitlines()[-1]
    assert code == 1 and "Traceback" not in err
    assert last.startswith(f"desktop-search: error: cannot reach {endpoint}")
    assert "refused" in last and "--endpoint" in last and "--proxy" in last
    if via_proxy:
        assert f"through proxy {dead}" in last


def test_http_404_names_the_url_and_403_says_access_denied(server, manifest, tmp_path):
    server.faults.missing.add("config.json")
    with pytest.raises(ModelError) as info:
        models.download_model(manifest, tmp_path / "a", endpoint=server.url)
    assert f"{server.url}/{REPO_ID}/resolve/{REVISION}/config.json" in str(info.value) and "404" in str(info.value)

    server.faults.missing.clear()
    server.faults.status[WEIGHTS] = 403
    with pytest.raises(ModelError, match=r"access denied \(HTTP 403\).*pytorch_model\.bin"):
        models.download_model(manifest, tmp_path / "b", endpoint=server.url)
    assert not (tmp_path / "b" / MARKER).exists()


# 9 ----------------------------------------------------------------------------------------------------
def test_not_enough_disk_space_is_reported_before_any_download(
    capsys, server, manifest_path, manifest, tmp_path, monkeypatch
):
    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda p: real(p)._replace(free=1_000_000))
    dest = tmp_path / "model"
    code, out, err = cli(capsys, "model", "download", "--endpoint", server.url,
                         "--manifest", manifest_path, "--model-dir", dest)
    need = format_bytes(manifest.total_bytes())
    assert code == 1 and f"not enough disk space: need {need} at {dest}, {format_bytes(1_000_000)} free" in err
    assert server.log == []


# 10 ---------------------------------------------------------------------------------------------------
def test_status_json_before_and_after_download(capsys, server, manifest_path, manifest, tmp_path):
    dest = tmp_path / "model"
    code, out, err = cli(capsys, "model", "status", "--json", "--manifest", manifest_path, "--model-dir", dest)
    before = json.loads(out)
    assert code == 0
    assert before["dir"] == str(dest) and not before["installed"] and not before["verified"]
    assert "no model" in before["problem"] and before["bytes"] == 0
    assert before["repo"] == REPO_ID and len(before["files"]) == len(manifest.files)

    code, out, err = cli(capsys, "model", "download", "--endpoint", server.url, "--manifest", manifest_path,
                         "--model-dir", dest)
    assert code == 0, err
    code, out, err = cli(capsys, "model", "status", "--json", "--manifest", manifest_path, "--model-dir", dest)
    after = json.loads(out)
    assert after["installed"] and after["verified"] and after["problem"] is None
    assert (after["repo"], after["revision"]) == (REPO_ID, REVISION)
    assert after["bytes"] == manifest.total_bytes() and all(f["present"] for f in after["files"])


# cancel, endpoint -------------------------------------------------------------------------------------
def test_cancel_stops_a_download_keeps_the_part_and_the_next_run_resumes(server, manifest, tiny_model_dir, tmp_path):
    server.faults.throttle_bps[WEIGHTS] = 2_000_000
    cancel = threading.Event()
    dest = tmp_path / "model"

    def progress(p: models.TransferProgress) -> None:
        if p.file == WEIGHTS and p.file_bytes > 300_000:
            cancel.set()

    with pytest.raises(ModelCancelled):
        models.download_model(manifest, dest, endpoint=server.url, progress=progress, cancel=cancel)
    kept = (dest / (WEIGHTS + ".part")).stat().st_size
    assert kept > 300_000 and not (dest / MARKER).exists()

    server.faults.throttle_bps.clear()
    server.clear_log()
    models.download_model(manifest, dest, endpoint=server.url)
    assert server.requests_for(WEIGHTS)[0].range_start == kept
    assert_same_files(dest, tiny_model_dir, manifest)


def test_endpoint_comes_from_flag_then_our_env_then_hf_endpoint(monkeypatch, manifest):
    assert models.default_endpoint() == "https://huggingface.co"
    monkeypatch.setenv("HF_ENDPOINT", "https://hf-mirror.example/")
    assert models.default_endpoint() == "https://hf-mirror.example"
    monkeypatch.setenv("DESKTOP_SEARCH_HF_ENDPOINT", "http://proxy.corp:8080/hf")
    assert models.default_endpoint() == "http://proxy.corp:8080/hf"
    assert models.resolve_url("http://proxy.corp:8080/hf/", manifest, "sub dir/a b.json") == (
        f"http://proxy.corp:8080/hf/{REPO_ID}/resolve/{REVISION}/sub%20dir/a%20b.json"
    )


def test_the_bundled_manifest_pins_the_real_bge_m3_files():
    m = Manifest.load(models.default_manifest_path())
    assert (m.repo, m.revision) == ("BAAI/bge-m3", "5617a9f61b028005a4858fdac845db406aefb181")
    assert {f.path for f in m.files} >= {WEIGHTS, "colbert_linear.pt", "sparse_linear.pt", "tokenizer.json"}
    assert m.total_bytes() == 2_271_145_830 + 2_100_674 + 3_516 + 17_098_108 + 5_069_051 + 444 + 964 + 687


def test_a_manifest_cannot_write_outside_the_model_folder(tmp_path):
    bad = tmp_path / "m.json"
    entry = {"path": "../evil", "size": 1, "sha256": "0" * 64}
    bad.write_text(json.dumps({"repo": "x/y", "revision": "r", "files": [entry]}))
    with pytest.raises(ModelError, match="invalid model manifest"):
        Manifest.load(bad)
