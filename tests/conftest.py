"""Test isolation and shared fixtures.

Every user folder points into tmp_path, hub libraries are offline, and any attempt to open a non-loopback
connection fails the test. The model is a tiny random BGE-M3-shaped one built here once per session and loaded
through the same code path as the real weights.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from desktop_search.environment import prepare_process

prepare_process(offline=True)  # before anything imports numpy or transformers, as the app does
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO = Path(__file__).resolve().parents[1]
# Every test has the per-test ``timeout`` of pyproject.toml (300 s); the end-to-end tests marked ``slow`` (they
# index real corpora with the model) get this much, unless they set their own.
SLOW_TIMEOUT_S = 900


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("slow") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(SLOW_TIMEOUT_S))


def shared_corpus() -> Path:
    override = os.environ.get("DESKTOP_SEARCH_SHARED_CORPUS")
    return Path(override) if override else REPO.parent / "shared" / "corpus"


@pytest.fixture(scope="session")
def corpus() -> Path:
    path = shared_corpus()
    if not (path / "pdfs" / "manifest.tsv").is_file():
        pytest.fail(f"shared corpus not found at {path} (set DESKTOP_SEARCH_SHARED_CORPUS)")
    return path


@pytest.fixture(scope="session")
def _derived_model_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("derived-model-cache")


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path_factory, monkeypatch, _derived_model_cache):
    home = tmp_path_factory.mktemp("home")
    # The int8 CPU copy of a model is derived from its weights and keyed by their fingerprint: one per session,
    # shared by every test that loads the tiny model with the default precision (building it takes seconds).
    monkeypatch.setenv("DESKTOP_SEARCH_CACHE_DIR", str(_derived_model_cache))
    for name in ("DATA_DIR", "CONFIG_DIR"):
        monkeypatch.setenv(f"DESKTOP_SEARCH_{name}", str(home / name.lower()))
    monkeypatch.setenv("DESKTOP_SEARCH_INDEX_DIR", str(home / "index"))
    monkeypatch.setenv("DESKTOP_SEARCH_MODEL_DIR", str(home / "no-model"))
    monkeypatch.setenv("HF_HOME", str(home / "hf"))
    monkeypatch.setenv("HOME", str(home))  # Qt's Documents/Desktop defaults resolve under here
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "xdg-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "xdg-data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "xdg-cache"))


_real_connect = socket.socket.connect


def _guarded_connect(self, address):
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and (
        host.startswith("127.") or host in ("localhost", "::1") or self.family == getattr(socket, "AF_UNIX", None)
    ):
        return _real_connect(self, address)
    raise AssertionError(f"test tried to reach the network: {address!r}")


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    from desktop_search.core.models import Manifest, verify_model, write_manifest_for
    from desktop_search.devtools.random_bge_m3 import build_random_bge_m3

    model_dir = build_random_bge_m3(tmp_path_factory.mktemp("models") / "bge-m3-tiny", size="tiny", seed=0)
    # The encoder refuses weights that never passed verification: verify through the real code path.
    manifest = Manifest.load(write_manifest_for(model_dir, repo="test/tiny-bge-m3", revision="0" * 40))
    bad = verify_model(manifest, model_dir)
    assert not bad, bad
    return model_dir


@pytest.fixture(scope="session")
def tiny_encoder(tiny_model_dir):
    from desktop_search.core.encoder import Encoder

    # The exact fp32 FlagEmbedding path: parity tests compare it with BGEM3FlagModel.compute_score.
    return Encoder(tiny_model_dir, device="cpu", precision="fp32")


@pytest.fixture
def settings(tmp_path, tiny_model_dir):
    from desktop_search.config import load_settings

    return load_settings(index_dir=tmp_path / "index", model_dir=tiny_model_dir, device="cpu", extract_workers=1)


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


DOCS = {
    "energy/solar.txt": "Photovoltaic panels convert sunlight into electricity. The efficiency of modern silicon "
    "solar cells is about twenty percent.\n\nInverters turn the direct current into alternating current for the grid.",
    "kitchen/bread.md": "# Sourdough bread\n\nMix flour, water and salt with the starter. Let the dough rise "
    "overnight, then bake it in a hot oven until the crust is dark brown.",
    "de/berlin.txt": "Berlin ist die Hauptstadt Deutschlands. Die Mauer teilte die Stadt von 1961 bis 1989.",
    "ja/tokyo.txt": "東京は日本の首都です。東京タワーと浅草寺は有名な観光地です。",
    "ar/cairo.txt": "القاهرة هي عاصمة مصر وأكبر مدنها. يمر نهر النيل عبر المدينة.",
    "ru/moscow.txt": "Москва — столица России. Кремль находится в центре города.",
}

PDF_PAGES = [
    "Annual report of the observatory. Weather was cloudy for most of the year.",
    "Results: the telescope measured quantum entanglement between distant photons, a surprising result.",
    "Appendix: budget tables and the list of staff members.",
]


def make_pdf(path: Path, pages: list[str]) -> Path:
    import pymupdf

    path.parent.mkdir(parents=True, exist_ok=True)
    doc = pymupdf.open()
    for text in pages:
        page = doc.new_page()
        page.insert_textbox(pymupdf.Rect(72, 72, 520, 770), text, fontsize=11)
    doc.save(str(path))
    doc.close()
    return path


@pytest.fixture
def docs(tmp_path) -> Path:
    root = tmp_path / "docs"
    for rel, text in DOCS.items():
        write(root / rel, text)
    make_pdf(root / "reports" / "observatory.pdf", PDF_PAGES)
    return root


class CountingEncoder:
    """The real tiny encoder, counting how many texts it is asked to encode (to prove nothing is re-encoded)."""

    def __init__(self, inner) -> None:
        self.inner, self.fingerprint, self.dim = inner, inner.fingerprint, inner.dim
        self.encoded: list[str] = []

    def encode(self, texts, **kw):
        self.encoded.extend(texts)
        return self.inner.encode(texts, **kw)

    def encode_query(self, text):
        return self.inner.encode_query(text)
