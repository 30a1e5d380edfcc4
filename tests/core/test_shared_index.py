"""A shared index in an S3 bucket: a real S3 protocol server (moto's server mode) on 127.0.0.1, started and stopped
by the fixture below; each "machine" is a separate process with its own config, data and cache folders and its
own host name. Covers indexing to s3://, searching from another process, the writer lease across hosts (refusal,
renewal, take-over after SIGKILL), a reader seeing a new file, stores that ignore conditional writes, credentials.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from desktop_search.core.location import IndexLocation, MissingCredentials, parse_options, public_options
from desktop_search.devtools import s3_server
from tests.conftest import REPO, write
from tests.s3_fixtures import aws_keys, s3, shared  # noqa: F401 - fixtures

pytestmark = pytest.mark.slow


@pytest.fixture
def folder(tmp_path) -> Path:
    docs = tmp_path / "srv" / "docs"
    write(docs / "solar.txt", "Photovoltaic panels convert sunlight into electricity on the roof of the depot.")
    write(docs / "bread.md", "# Sourdough\n\nMix flour, water and salt with the starter, then bake the loaf.")
    return docs


def machine_env(tmp_path: Path, name: str, *, keys: bool = True, **extra: str) -> dict[str, str]:
    """The environment of one simulated machine: own folders, own host name, the test's S3 keys."""
    home = tmp_path / f"machine-{name}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DESKTOP_SEARCH_"))}
    env.update({
        "PYTHONPATH": str(REPO), "HOME": str(home), "DESKTOP_SEARCH_HOSTNAME": name,
        "DESKTOP_SEARCH_CONFIG_DIR": str(home / "config"), "DESKTOP_SEARCH_DATA_DIR": str(home / "data"),
        "DESKTOP_SEARCH_CACHE_DIR": str(home / "cache"), "DESKTOP_SEARCH_MODEL_DIR": str(home / "no-model"),
        "DESKTOP_SEARCH_NO_KEYCHAIN": "1",
    })
    if keys:
        env.update({"AWS_ACCESS_KEY_ID": s3_server.ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": s3_server.SECRET_KEY})
    env.update(extra)
    return env


def run(env: dict[str, str], *args: object, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "desktop_search", *map(str, args)], env=env, capture_output=True,
                          text=True, timeout=timeout, cwd=REPO)


def remote(shared: str, s3) -> list[str]:
    return ["--index-dir", shared, "--storage-option", f"endpoint={s3.endpoint}"]


class Watcher:
    """``desktop-search watch`` in its own process, its stderr collected line by line."""

    def __init__(self, env: dict[str, str], *args: object) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "desktop_search", "watch", *map(str, args)], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, needle: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(needle in line for line in self.lines):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"watch never said {needle!r}; it said: {self.lines}")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout=60)
        self._reader.join(timeout=10)
        self.proc.stdout.close()
        self.proc.stderr.close()
        return code


@pytest.fixture
def watchers():
    started: list[Watcher] = []

    def start(env, *args) -> Watcher:
        w = Watcher(env, *args)
        started.append(w)
        return w

    yield start
    for w in started:
        w.stop(signal.SIGKILL)  # closes its pipes too; a no-op signal for one already stopped


# -- indexing and searching across machines ------------------------------------------------------------------
def test_index_to_s3_then_search_from_a_second_machine(tmp_path, s3, shared, folder, tiny_model_dir):
    writer = machine_env(tmp_path, "fileserver", DESKTOP_SEARCH_MODEL_DIR=str(tiny_model_dir))
    done = run(writer, "index", folder, *remote(shared, s3), "--device", "cpu", "--precision", "fp32", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["indexed"] == 2

    # Nothing was written locally on the indexing machine: the index is in the bucket.
    assert not (tmp_path / "machine-fileserver" / "data" / "index").exists()

    laptop = machine_env(tmp_path, "laptop", DESKTOP_SEARCH_MODEL_DIR=str(tiny_model_dir))
    found = run(laptop, "search", "sourdough flour starter", *remote(shared, s3), "--device", "cpu", "--precision", "fp32",
                "--json")
    assert found.returncode == 0, found.stderr
    result = json.loads(found.stdout)
    assert result["mode"] == "hybrid"
    assert result["hits"][0]["path"] == str(folder / "bread.md")
    assert result["hits"][0]["scores"]["dense"] is not None  # vectors came back from the bucket

    status = run(laptop, "status", "--json", *remote(shared, s3))
    assert status.returncode == 0, status.stderr
    st = json.loads(status.stdout)
    assert st["index_dir"] == shared and st["files"]["indexed"] == 2 and st["index_bytes"] > 0


def test_second_writer_on_another_host_is_refused_while_the_lease_is_renewed(tmp_path, s3, shared, folder, watchers):
    alpha = machine_env(tmp_path, "alpha", DESKTOP_SEARCH_LEASE_S="3")
    w = watchers(alpha, folder, *remote(shared, s3), "--keyword-only", "--poll")
    w.wait_for("press Ctrl+C")
    time.sleep(5)  # longer than the lease: only renewal keeps it

    beta = machine_env(tmp_path, "beta")
    refused = run(beta, "index", folder, *remote(shared, s3), "--keyword-only")
    assert refused.returncode == 1
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1, refused.stderr
    assert f"is in use by PID {w.proc.pid} (desktop-search watch) on host alpha" in lines[0]

    assert w.stop() == 0  # a clean stop gives the lease back at once
    again = run(beta, "index", folder, *remote(shared, s3), "--keyword-only")
    assert again.returncode == 0, again.stderr


def test_lease_of_a_killed_writer_is_taken_over_after_it_expires(tmp_path, s3, shared, folder, watchers):
    alpha = machine_env(tmp_path, "alpha", DESKTOP_SEARCH_LEASE_S="15")
    w = watchers(alpha, folder, *remote(shared, s3), "--keyword-only", "--poll")
    w.wait_for("press Ctrl+C")
    w.stop(signal.SIGKILL)
    killed_at = time.monotonic()

    beta = machine_env(tmp_path, "beta")
    first = run(beta, "index", folder, *remote(shared, s3), "--keyword-only")
    assert first.returncode == 1 and "on host alpha" in first.stderr  # another host cannot know it died

    deadline = killed_at + 60
    while True:
        took = run(beta, "index", folder, *remote(shared, s3), "--keyword-only", "--json")
        if took.returncode == 0 or time.monotonic() > deadline:
            break
        assert "on host alpha" in took.stderr
        time.sleep(1)
    assert took.returncode == 0, took.stderr
    assert time.monotonic() - killed_at >= 15  # not before the lease ran out
    assert json.loads(took.stdout)["unchanged"] == 2  # the killed writer's committed work is kept


def search_until_found(searcher, query: str, timeout: float = 60) -> list:
    """Keyword hits for ``query`` once there are any (polling, as a user re-running a search would), or []."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        hits = searcher.search(query, mode="keyword").hits
        if hits:
            return hits
        time.sleep(0.5)
    return []


def test_a_reader_sees_a_new_file_within_the_refresh_interval(tmp_path, s3, shared, folder, watchers, aws_keys):
    from desktop_search.core.search import Searcher
    from desktop_search.core.store import Store

    alpha = machine_env(tmp_path, "alpha")
    w = watchers(alpha, folder, *remote(shared, s3), "--keyword-only", "--poll", "--poll-interval", "0.5",
                 "--debounce", "0.2")
    w.wait_for("press Ctrl+C")

    location = IndexLocation.parse(shared, [("endpoint", s3.endpoint)])
    # The reader stays open, as the window does, with its local copy of the chunks table.
    store = Store(location, create=False, read_consistency_s=1.0, mirror_dir=tmp_path / "laptop-cache")
    searcher = Searcher(store, None)
    assert searcher.search("photovoltaic", mode="keyword").hits
    assert not searcher.search("zeppelin", mode="keyword").hits

    write(folder / "airship.txt", "The zeppelin hangar at the edge of town is now a museum.")
    hits = search_until_found(searcher, "zeppelin")
    assert hits and hits[0].path == str(folder / "airship.txt")

    # An edited file keeps its chunk ids: the reader must show the new text, never the copy it had.
    write(folder / "solar.txt", "Wind turbines on the ridge now feed the depot.")
    hits = search_until_found(searcher, "turbines")
    assert hits and hits[0].path == str(folder / "solar.txt") and "turbines" in hits[0].text
    assert not searcher.search("photovoltaic", mode="keyword").hits
    assert w.stop() == 0


# -- stores and credentials that cannot work ----------------------------------------------------------------
def test_a_store_that_ignores_conditional_writes_is_refused(tmp_path, s3, shared, folder):
    with s3_server.S3Proxy(s3.endpoint, strip_conditional=True) as proxy:
        env = machine_env(tmp_path, "alpha")
        done = run(env, "index", folder, "--index-dir", shared, "--storage-option", f"endpoint={proxy.endpoint}",
                   "--keyword-only")
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "ignores conditional writes" in lines[0] and "lance#4205" in lines[0]


def test_missing_credentials_are_one_clear_error(tmp_path, s3, shared):
    env = machine_env(tmp_path, "laptop", keys=False)
    done = run(env, "search", "anything", *remote(shared, s3), "--mode", "keyword", timeout=60)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"desktop-search: error: no credentials for {shared}")
    assert "AWS_ACCESS_KEY_ID" in lines[0]


def test_keys_come_from_an_aws_profile_and_are_never_kept_in_settings(tmp_path, monkeypatch, s3, shared, folder):
    aws = tmp_path / "aws"
    write(aws / "credentials", f"[team]\naws_access_key_id = {s3_server.ACCESS_KEY}\n"
                               f"aws_secret_access_key = {s3_server.SECRET_KEY}\n")
    env = machine_env(tmp_path, "alpha", keys=False, AWS_SHARED_CREDENTIALS_FILE=str(aws / "credentials"))
    done = run(env, "index", folder, *remote(shared, s3), "--storage-option", "profile=team", "--keyword-only")
    assert done.returncode == 0, done.stderr

    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(aws / "credentials"))
    with pytest.raises(MissingCredentials, match="profile 'nobody'"):
        IndexLocation.parse(shared, [("profile", "nobody")]).resolved()

    given = parse_options(["endpoint=http://127.0.0.1:9", "secret_access_key=s3cr3t", "aws_session_token=t",
                           "region=eu-west-1"])
    assert dict(public_options(given)) == {"endpoint": "http://127.0.0.1:9", "region": "eu-west-1"}


def test_bad_uri_and_option_are_one_line_errors(tmp_path):
    env = machine_env(tmp_path, "laptop")
    for args, needle in [
        (["--index-dir", "s3://"], "names no bucket"),
        (["--index-dir", "s3://bucket/x", "--storage-option", "endpoint"], "is not KEY=VALUE"),
    ]:
        done = run(env, "status", *args, timeout=60)
        assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert needle in done.stderr


def test_a_writer_that_lost_its_lease_stops_writing(monkeypatch, s3, shared, aws_keys):
    import obstore

    from desktop_search.core.lease import LEASE_OBJECT, LeaseLost, lease_holder, writer_lock
    from desktop_search.core.store import Store

    monkeypatch.setenv("DESKTOP_SEARCH_LEASE_S", "2")  # renewed every 0.7 s
    location = IndexLocation.parse(shared, [("endpoint", s3.endpoint)])
    store = Store(location, create=True)
    told: list[str] = []
    with writer_lock(location, command="desktop-search watch", on_lost=told.append):
        # This machine stalled past its lease and another host took the index over meanwhile.
        taker = {"host": "other", "pid": 4242, "command": "desktop-search watch", "expires": time.time() + 60}
        obstore.put(location.client(), LEASE_OBJECT, json.dumps(taker).encode())
        deadline = time.monotonic() + 20
        while not told and time.monotonic() < deadline:
            time.sleep(0.1)
        assert told and "taken over by another writer" in told[0]
        with pytest.raises(LeaseLost):
            store.replace_chunks(["/srv/docs/a.txt"], [])
    assert lease_holder(location)["host"] == "other"  # the taker's lease is left alone
