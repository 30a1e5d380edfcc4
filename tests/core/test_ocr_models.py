"""Extra OCR recognition models: the pinned manifest, download over real HTTP from a local package-index stand-in
(tests/model_server.py on 127.0.0.1), SHA-256 checks of the archive and of each unpacked model, resuming, refusal
of tampered files before anything loads them, and the recogniser chosen per page.

The pack served here is built from the OCR engine's own recognition model and its character list (a real model,
so OCR really runs with it); the bundled manifest's pack is the PP-OCRv5 recogniser pinned by its package-index
file, whose accuracy is measured in benchmarks/bench_ocr_models.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from desktop_search.core import models, ocr_models
from desktop_search.core.extract import ocr
from desktop_search.core.models import ModelError
from tests.model_server import ModelServer
from tests.ocr_pack import REPO, REVISION, WHEEL, write_test_pack

CYRILLIC = "Смотритель маяка писал о северных олушах и буревестниках."


@pytest.fixture(autouse=True)
def _no_proxy_from_the_environment(monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy",
                 ocr_models.ENDPOINT_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("index")
    return root, write_test_pack(root)


@pytest.fixture
def server(served):
    with ModelServer(served[0], REPO, REVISION) as srv:
        yield srv


@pytest.fixture
def pack(served) -> ocr_models.OcrPack:
    return ocr_models.load_packs(served[1])[0]


def test_the_bundled_manifest_pins_a_real_archive_and_its_models():
    (pack,) = ocr_models.load_packs()
    assert pack.id == "ppocrv5" and "japanese" in pack.scripts and "Apache-2.0" in pack.licence
    assert pack.archive.url.endswith("/" + pack.archive.path) and pack.archive.size == 19_176_168
    assert {f.path for f in pack.files} == {"rec.onnx", "keys.txt"}
    assert all(len(f.sha256) == 64 and f.size > 0 for f in (pack.archive, *pack.files))


def test_install_downloads_verifies_unpacks_and_ocr_loads_it(server, pack, tmp_path):
    root = tmp_path / "ocr"
    assert ocr_models.installed(root, (pack,)) == ()
    folder = ocr_models.install(pack, root, endpoint=server.url, backoff_s=0.01)
    assert sorted(p.name for p in folder.iterdir()) == [models.MARKER, "keys.txt", "rec.onnx"]
    assert not (root / ocr_models.DOWNLOADS / pack.id).exists()  # the archive is deleted once unpacked
    assert ocr_models.installed(root, (pack,)) == (pack,)
    assert ocr_models.verify(pack, root) == []
    assert [r.id for r in ocr.recognisers(str(root), "")] == [ocr.BUNDLED]  # not in the app's manifest
    # Installed again: nothing is fetched.
    server.clear_log()
    ocr_models.install(pack, root, endpoint=server.url)
    assert server.requests_for(WHEEL) == []


def test_a_cut_download_resumes_and_a_tampered_archive_installs_nothing(server, pack, tmp_path):
    root = tmp_path / "ocr"
    cut = 1_000_003
    server.faults.cut_after[WHEEL] = cut
    ocr_models.install(pack, root, endpoint=server.url, backoff_s=0.01)
    first, second = server.requests_for(WHEEL)
    assert first.bytes_sent == cut and second.range_start == cut
    assert ocr_models.installed(root, (pack,)) == (pack,)
    other = tmp_path / "other"
    server.faults.corrupt_always.add(WHEEL)
    with pytest.raises(ModelError, match="did not match the manifest"):
        ocr_models.install(pack, other, endpoint=server.url, backoff_s=0.01)
    assert ocr_models.installed(other, (pack,)) == () and not (other / pack.id / "rec.onnx").exists()


def test_a_member_that_does_not_match_its_pin_is_refused(server, served, tmp_path):
    manifest = json.loads(served[1].read_text("utf-8"))
    manifest["packs"][0]["files"][1]["sha256"] = "0" * 64
    path = tmp_path / "m.json"
    path.write_text(json.dumps(manifest), "utf-8")
    (pack,) = ocr_models.load_packs(path)
    with pytest.raises(ModelError, match="dict.txt: expected sha256 0{64}"):
        ocr_models.install(pack, tmp_path / "ocr", endpoint=server.url, backoff_s=0.01)
    assert ocr_models.installed(tmp_path / "ocr", (pack,)) == ()


def test_no_address_is_one_actionable_line(pack, tmp_path):
    with pytest.raises(ModelError, match=ocr_models.ENDPOINT_ENV):
        ocr_models.install(pack, tmp_path / "ocr")


def _cyrillic_page():
    from desktop_search.core.extract.pdf import pymupdf_module

    pymupdf = pymupdf_module()
    doc = pymupdf.open()
    page = doc.new_page(width=420, height=200)
    page.insert_font(fontname="dv", fontfile=_font())
    for i in range(3):
        page.insert_text((20, 40 + 50 * i), CYRILLIC[:40], fontsize=14, fontname="dv")
    return doc


def _font() -> str:
    for candidate in ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
                      "/usr/share/fonts/dejavu/DejaVuSans.ttf"):
        if Path(candidate).is_file():
            return candidate
    import matplotlib

    return str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf")


def test_the_recogniser_is_chosen_per_page_and_a_changed_model_is_never_loaded(server, pack, served, tmp_path,
                                                                                monkeypatch):
    root = tmp_path / "ocr"
    ocr_models.install(pack, root, endpoint=server.url, backoff_s=0.01)
    monkeypatch.setenv(ocr_models.MANIFEST_ENV, str(served[1]))
    assert [r.id for r in ocr.recognisers(str(root), "")] == [ocr.BUNDLED, "testpack"]
    assert [r.id for r in ocr.recognisers(str(root), "testpack")] == ["testpack", ocr.BUNDLED]
    doc = _cyrillic_page()
    cache = str(tmp_path / "cache")
    # Lines the bundled models cannot read (Cyrillic) send the page to every other installed recogniser.
    first = ocr.recognise(doc[0], cache, 1, models_dir=str(root))
    assert first.unreadable and first.tried == (ocr.BUNDLED, "testpack") and not first.cached
    again = ocr.recognise(doc[0], cache, 1, models_dir=str(root))
    assert again.cached and again.tried == first.tried
    # Read before the pack was installed (bundled only): that cache entry is not enough once a pack is.
    assert not ocr.recognise(doc[0], str(tmp_path / "cache2"), 1).cached
    assert not ocr.recognise(doc[0], str(tmp_path / "cache2"), 1, models_dir=str(root)).cached
    # The user's preferred recogniser reads the page first (and the cache is not taken for its reading).
    chosen = ocr.recognise(doc[0], cache, 1, models_dir=str(root), primary="testpack")
    assert not chosen.cached and chosen.tried[0] == "testpack"
    # A model changed after verification is not loaded: the page goes back to the bundled models.
    with open(root / pack.id / "keys.txt", "ab") as fh:
        fh.write(b"x\n")
    assert [r.id for r in ocr.recognisers(str(root), "testpack")] == [ocr.BUNDLED]
    assert ocr_models.installed(root, (pack,)) == ()
    assert [b.path for b in ocr_models.verify(pack, root)] == ["keys.txt"]


def test_the_command_line_lists_installs_and_verifies_a_pack(server, served, tmp_path, capsys):
    from desktop_search.cli import main

    root, manifest = tmp_path / "ocr", served[1]
    where = ["--ocr-dir", str(root), "--ocr-manifest", str(manifest)]
    assert main(["model", "ocr-packs", "--json", *where]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["id"] == "testpack" and row["installed"] is False and row["scripts"] == ["han"]

    # No address: one line naming what to set, nothing installed.
    assert main(["model", "ocr-install", "testpack", *where]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and ocr_models.ENDPOINT_ENV in err[0]
    assert main(["model", "ocr-install", "klingon", "--endpoint", server.url, *where]) == 1
    assert "choose one of: testpack" in capsys.readouterr().err

    assert main(["model", "ocr-install", "testpack", "--endpoint", server.url, *where]) == 0
    assert "OCR pack ready" in capsys.readouterr().out
    pack = ocr_models.load_packs(manifest)[0]
    assert ocr_models.installed(root, (pack,)) == (pack,) and not ocr_models.verify(pack, root)
    assert main(["model", "ocr-packs", *where]) == 0
    listed = capsys.readouterr().out
    assert "testpack: Test script — han" in listed and "installed, verified" in listed
    (root / "testpack" / "keys.txt").write_text("tampered", "utf-8")
    assert main(["model", "ocr-packs", "--json", *where]) == 0
    assert json.loads(capsys.readouterr().out)[0]["installed"] is False  # a changed model is not counted


def test_indexing_from_the_command_line_reads_scans_with_the_chosen_pack_first(server, served, tmp_path, monkeypatch,
                                                                                 capsys):
    from desktop_search.cli import main
    from desktop_search.core.extract.pdf import pymupdf_module

    root = tmp_path / "ocr"
    # Packs of one's own: the manifest named in the environment is the one every command and worker uses.
    monkeypatch.setenv(ocr_models.MANIFEST_ENV, str(served[1]))
    scans = tmp_path / "scans"
    scans.mkdir()
    doc = pymupdf_module().open()
    page = doc.new_page(width=420, height=120)
    page.insert_text((20, 50), "The lighthouse keeper counted gannets", fontsize=16)
    page.get_pixmap(dpi=150).save(str(scans / "logbook.png"))

    def index(*extra: str, run: str) -> int:
        monkeypatch.setenv("DESKTOP_SEARCH_CACHE_DIR", str(tmp_path / run))  # each run its own OCR cache
        return main(["index", str(scans), "--keyword-only", "--index-dir", str(tmp_path / f"index-{run}"),
                     "--ocr-dir", str(root), *extra])

    def first_readers(run: str) -> list[str]:
        entries = [json.loads(f.read_text("utf-8")) for f in (tmp_path / run / "ocr").rglob("*.json")]
        return [e["tried"][0] for e in entries]

    # A pack that is not installed, or not known: one line saying what to do, nothing indexed.
    assert index("--ocr-pack", "testpack", run="a") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "desktop-search model ocr-install testpack" in err[0]
    assert index("--ocr-pack", "klingon", run="a") == 1
    assert "choose one of: testpack" in capsys.readouterr().err
    assert not (tmp_path / "index-a").exists()

    assert main(["model", "ocr-install", "testpack", "--endpoint", server.url, "--ocr-dir", str(root)]) == 0
    capsys.readouterr()
    # Chosen: the pack reads the scan first; not chosen: the bundled models do (the pack only when they fail).
    assert index("--ocr-pack", "testpack", run="chosen") == 0
    assert "indexed 1 files" in capsys.readouterr().out
    assert first_readers("chosen") == ["testpack"]
    assert index(run="default") == 0
    assert first_readers("default") == [ocr.BUNDLED]
    # What the pack read is searchable.
    monkeypatch.setenv("DESKTOP_SEARCH_INDEX_DIR", str(tmp_path / "index-chosen"))
    assert main(["search", "gannets", "--mode", "keyword", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["hits"]
    assert [Path(h["path"]).name for h in hits] == ["logbook.png"]
