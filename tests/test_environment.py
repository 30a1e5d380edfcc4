"""The process environment is prepared in one place (``desktop_search/environment.py``) and every way into the
app uses it: a user's own setting wins over a default, offline is forced, and no other file sets these names."""

from __future__ import annotations

import re
import subprocess
import sys

from desktop_search import environment
from tests.conftest import REPO, write


def test_defaults_fill_gaps_but_keep_what_the_user_set():
    env = {"OPENBLAS_NUM_THREADS": "4", "HF_HUB_OFFLINE": "0"}
    environment.prepare_process(environ=env)
    assert env["OPENBLAS_NUM_THREADS"] == "4"  # the user's choice
    assert env["TRANSFORMERS_NO_TF"] == "1" and env["TOKENIZERS_PARALLELISM"] == "false"
    assert env["HF_HUB_OFFLINE"] == "0"  # offline is only forced where asked for
    environment.prepare_process(offline=True, environ=env)
    assert env["HF_HUB_OFFLINE"] == "1" and env["TRANSFORMERS_OFFLINE"] == "1"


def test_child_environment_is_a_prepared_copy():
    base = {"PATH": "/bin"}
    env = environment.process_env(base, QT_QPA_PLATFORM="offscreen")
    assert base == {"PATH": "/bin"}
    assert env["TRANSFORMERS_NO_TF"] == "1" and env["QT_QPA_PLATFORM"] == "offscreen" and env["PATH"] == "/bin"


def test_the_entry_point_prepares_the_environment_before_transformers_or_numpy_load():
    code = ("import os, sys\n"
            "for k in ('TRANSFORMERS_NO_TF', 'OPENBLAS_NUM_THREADS'): os.environ.pop(k, None)\n"
            "import desktop_search.__main__ as m\n"
            "sys.argv = ['desktop-search', '--help']\n"
            "try:\n    m.main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(os.environ.get('TRANSFORMERS_NO_TF'), os.environ.get('OPENBLAS_NUM_THREADS'),"
            " 'numpy' in sys.modules, 'transformers' in sys.modules, file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.stderr.strip().splitlines()[-1] == "1 1 False False", proc.stderr


def test_no_other_file_sets_the_process_environment():
    names = "|".join(re.escape(n) for n in (*environment.DEFAULTS, *environment.OFFLINE, *environment.PRIVATE))
    q = "[\"']"
    setter = re.compile(
        rf"environ\[{q}({names}){q}\]\s*=|(setdefault|setenv)\(\s*{q}({names}){q}|\b({names})\s*=\s*{q}"
        rf"|{q}({names}){q}\s*:\s*{q}"
    )
    offenders = []
    for folder in ("desktop_search", "benchmarks", "packaging", "tests"):
        for path in (REPO / folder).rglob("*.py"):
            if path.name in ("environment.py", "test_environment.py", "test_privacy.py"):
                continue
            for n, line in enumerate(path.read_text("utf-8").splitlines(), 1):
                if setter.search(line):
                    offenders.append(f"{path.relative_to(REPO)}:{n}: {line.strip()}")
    assert not offenders, "set these through desktop_search.environment:\n" + "\n".join(offenders)


def test_telemetry_is_off_even_where_the_user_turned_it_on():
    env = {"ORT_DISABLE_TELEMETRY": "0", "DO_NOT_TRACK": "0"}
    environment.prepare_process(environ=env)
    assert env["ORT_DISABLE_TELEMETRY"] == env["HF_HUB_DISABLE_TELEMETRY"] == env["DO_NOT_TRACK"] == "1"


def test_a_one_shot_search_collects_garbage_again_once_its_index_is_open(tmp_path):
    """Start-up runs without garbage collections (environment.defer_collections); the index being open ends it:
    collections are back on, and what start-up loaded is frozen, also out of the collection at exit. A command
    that opens no index gets collections back before it starts."""
    docs = write(tmp_path / "docs" / "a.txt", "The telescope pointed at the observatory dome.").parent
    code = (
        "import gc, sys\n"
        "import desktop_search.__main__ as m\n"
        "from desktop_search.cli import common\n"
        "real_open, seen = common.open_store, []\n"
        "def open_store(*a, **k):\n"
        "    seen.append(gc.isenabled())\n"
        "    return real_open(*a, **k)\n"
        "common.open_store = open_store\n"
        "import desktop_search.cli.search as s; s.open_store = open_store\n"
        "rc = m.main(sys.argv[1:])\n"
        "print(rc, seen, gc.isenabled(), gc.get_freeze_count() > 1000, file=sys.stderr)\n"
    )
    env = environment.process_env(DESKTOP_SEARCH_DATA_DIR=str(tmp_path / "data"),
                                  DESKTOP_SEARCH_CONFIG_DIR=str(tmp_path / "cfg"),
                                  DESKTOP_SEARCH_MODEL_DIR=str(tmp_path / "none"), PYTHONPATH=str(REPO))

    def run(*args: str) -> str:
        proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300,
                              cwd=REPO, env=env)
        return proc.stderr.strip().splitlines()[-1]

    assert run("index", str(docs), "--keyword-only") == "0 [] True True"  # collections on before indexing starts
    assert run("search", "telescope", "--mode", "keyword") == "0 [False] True True"
    assert run("model", "status").split()[-2] == "True"
