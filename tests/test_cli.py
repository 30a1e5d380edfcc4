"""The command-line contract: index, search (--json, --queries), status, and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from desktop_search.cli import main
from tests.conftest import REPO, write


def cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def dirs(tmp_path, docs, tiny_model_dir):
    return {"docs": docs, "idx": tmp_path / "idx", "model": tiny_model_dir, "nomodel": tmp_path / "nomodel"}


def test_index_then_hybrid_search_json_contract(capsys, dirs):
    code, out, err = cli(capsys, "index", dirs["docs"], "--index-dir", dirs["idx"], "--model-dir", dirs["model"], "--device", "cpu")
    assert code == 0, err
    assert "indexed 7 files" in out and "failed" in out
    code, out, err = cli(capsys, "search", "quantum entanglement", "--json", "-k", "3",
                         "--index-dir", dirs["idx"], "--model-dir", dirs["model"])
    assert code == 0, err
    res = json.loads(out)
    assert res["query"] == "quantum entanglement" and res["mode"] == "hybrid"
    assert 1 <= len(res["hits"]) <= 3
    scores = [h["score"] for h in res["hits"]]
    assert scores == sorted(scores, reverse=True)
    for h in res["hits"]:
        assert Path(h["path"]).is_absolute() and Path(h["path"]).exists()
        assert h["page"] is None or (isinstance(h["page"], int) and h["page"] >= 1)
        assert set(h["scores"]) == {"dense", "sparse", "colbert", "bm25"}
        assert all(isinstance(h["scores"][k], float) for k in ("dense", "sparse", "colbert"))
        assert h["scores"]["bm25"] is None or isinstance(h["scores"]["bm25"], float)
        assert isinstance(h["snippet"], str) and h["text"]
    pdf = [h for h in res["hits"] if h["path"].endswith("observatory.pdf")]
    assert pdf and pdf[0]["page"] == 2 and "entanglement" in pdf[0]["text"]


def test_keyword_search_without_a_model(capsys, dirs):
    code, out, err = cli(capsys, "index", dirs["docs"], "--index-dir", dirs["idx"], "--model-dir", dirs["nomodel"])
    assert code == 0 and "keyword index only" in err and "no model at" in err
    code, out, err = cli(capsys, "search", "Hauptstadt", "--json", "--index-dir", dirs["idx"], "--model-dir", dirs["nomodel"])
    assert code == 0 and "keyword search only" in err
    res = json.loads(out)
    assert res["mode"] == "keyword"
    assert res["hits"][0]["path"].endswith("berlin.txt") and res["hits"][0]["page"] is None
    assert res["hits"][0]["scores"]["bm25"] > 0
    # explicitly asking for hybrid without a model names the problem
    code, out, err = cli(capsys, "search", "x", "--mode", "hybrid", "--index-dir", dirs["idx"], "--model-dir", dirs["nomodel"])
    assert code == 1 and "no model" in err and err.count("\n") == 1


def test_queries_file_writes_one_json_object_per_line(capsys, dirs, tmp_path):
    cli(capsys, "index", dirs["docs"], "--index-dir", dirs["idx"], "--model-dir", dirs["model"])
    qfile = write(tmp_path / "q.txt", "東京\nsourdough bread\n\nМосква\n")
    code, out, err = cli(capsys, "search", "--queries", qfile, "--json", "-k", "2",
                         "--index-dir", dirs["idx"], "--model-dir", dirs["model"])
    assert code == 0, err
    lines = out.strip().splitlines()
    assert [json.loads(l)["query"] for l in lines] == ["東京", "sourdough bread", "Москва"]
    assert json.loads(lines[1])["hits"][0]["path"].endswith("bread.md")


def test_status_json_reports_counts_failures_size_and_model(capsys, dirs):
    write(dirs["docs"] / "broken.pdf", "not a pdf at all")
    cli(capsys, "index", dirs["docs"], "--index-dir", dirs["idx"], "--model-dir", dirs["model"])
    code, out, err = cli(capsys, "status", "--json", "--index-dir", dirs["idx"], "--model-dir", dirs["model"])
    assert code == 0, err
    st = json.loads(out)
    assert st["files"] == {"total": 8, "indexed": 7, "failed": 1, "pending": 0}
    assert st["chunks"] >= 7 and st["index_bytes"] > 0
    assert st["failures"] == [{"path": str(dirs["docs"] / "broken.pdf"), "reason": "corrupt", "detail": st["failures"][0]["detail"]}]
    assert st["failures"][0]["detail"]
    assert st["model"]["installed"] is True and st["model"]["encoded_texts"] > 0


@pytest.mark.parametrize(
    "args,code,needle",
    [
        (["search", "x"], 1, "no index"),
        (["status"], 1, "no index"),
        (["index", "/definitely/not/here"], 1, "no such file or folder"),
        (["search", "x", "--mode", "fuzzy"], 2, "invalid choice"),
        (["search"], 1, "QUERY"),
        (["search", "x", "-k", "0"], 1, "-k"),
        (["frobnicate"], 2, "invalid choice"),
    ],
)
def test_bad_input_gives_one_line_error_and_nonzero_exit(capsys, tmp_path, args, code, needle):
    with pytest.raises(SystemExit) if code == 2 else _nullcontext() as exc:
        rc = main([*args, *(["--index-dir", str(tmp_path / "none")] if args[0] in ("search", "status") and code == 1 else [])])
    rc = exc.value.code if code == 2 else rc
    out, err = capsys.readouterr()
    assert rc == code
    assert needle in err and err.count("\n") == 1 and "Traceback" not in err


class _nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def test_real_process_missing_index_is_one_line(tmp_path):
    env = {**os.environ, "DESKTOP_SEARCH_INDEX_DIR": str(tmp_path / "none")}
    proc = subprocess.run([sys.executable, "-m", "desktop_search", "search", "anything"], capture_output=True,
                          text=True, env=env, cwd=REPO, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith("desktop-search: error: no index at")
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1


def test_core_imports_without_qt(tmp_path):
    """The core must never need Qt: import every module of desktop_search.core (found on disk, so new modules
    are covered too) with PySide6 made unimportable; and none of them may pull in torch at import."""
    code = (
        "import sys, pkgutil; sys.modules['PySide6'] = None; sys.modules['shiboken6'] = None\n"
        "import desktop_search.core as core, desktop_search.cli, desktop_search.config, importlib\n"
        "names = [m.name for m in pkgutil.walk_packages(core.__path__, 'desktop_search.core.')]\n"
        "assert len(names) >= 30, names\n"
        "for n in names: importlib.import_module(n)\n"
        "assert 'torch' not in sys.modules, 'importing the core must not import torch'\n"
        "print('ok')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_self_test_proves_an_installation_end_to_end(tiny_model_dir):
    proc = subprocess.run([sys.executable, "-m", "desktop_search", "--self-test", "--model-dir", str(tiny_model_dir)],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])["self_test"]
    assert report["ok"] and report["hybrid"]["all_modes"] and report["hybrid"]["pdf_page"] == 2
    assert report["keyword"]["top"] == "berlin.txt" and report["index"]["failed"] == 0
    # one file of each kind, and a mail attachment found as a document of its own
    assert len(report["kinds"]) == 10 and all(report["kinds"].values()), report["kinds"]
    assert report["kinds"]["mail.eml › sighting.html"]


def test_self_test_without_a_model_is_a_one_line_error(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "desktop_search", "--self-test", "--model-dir", str(tmp_path / "none")],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and "no model at" in proc.stderr


def test_gui_starts_offscreen_and_quits_cleanly(tmp_path):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "DESKTOP_SEARCH_INDEX_DIR": str(tmp_path / "idx")}
    proc = subprocess.run([sys.executable, "-m", "desktop_search", "gui", "--quit-after", "60"],
                          capture_output=True, text=True, cwd=REPO, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1])["gui_smoke"]["index_ready"] is True


def test_protected_pdfs_are_indexed_with_a_passwords_file_and_the_passwords_are_kept_nowhere(capsys, tmp_path):
    import pymupdf

    docs = tmp_path / "docs"
    docs.mkdir()
    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "Quarterly payslip for the lighthouse keeper", fontsize=12)
    doc.save(str(docs / "payslip.pdf"), encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="s3cret!", owner_pw="hr")
    where = ["--index-dir", tmp_path / "idx"]
    code, out, err = cli(capsys, "index", docs, "--keyword-only", *where)
    assert code == 0 and "1 failed" in out and "password-protected PDF (AES-256); no password known" in err
    passwords = tmp_path / "passwords.txt"
    passwords.write_text("wrong\n\ns3cret!\n", "utf-8")
    # The file failed as protected and has not changed: with passwords it is tried again, and opens.
    code, out, err = cli(capsys, "index", docs, "--keyword-only", "--passwords-file", passwords, *where)
    assert code == 0 and "indexed 1 files" in out and "0 failed" in out, out + err
    code, out, _ = cli(capsys, "search", "payslip", "--mode", "keyword", "--json", *where)
    assert [Path(h["path"]).name for h in json.loads(out)["hits"]] == ["payslip.pdf"]
    # Nothing of the passwords file is kept: not in the index folder, not in the settings.
    assert not any(b"s3cret!" in f.read_bytes() for f in (tmp_path / "idx").rglob("*") if f.is_file())
    code, _out, err = cli(capsys, "index", docs, "--keyword-only", "--passwords-file", tmp_path / "nope.txt", *where)
    assert code == 1 and len(err.strip().splitlines()) == 1 and "cannot read the passwords file" in err
