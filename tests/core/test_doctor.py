"""`doctor` finds what crashes, full disks and old versions leave behind, `--repair` fixes it, and the next index
run then produces exactly the index a clean run produces. An incompatible index is never silently misread."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa

from desktop_search.cli import main
from desktop_search.config import load_settings
from desktop_search.core import doctor
from desktop_search.core.indexer import Indexer
from desktop_search.core.store import CHUNKS_SCHEMA, FILES_SCHEMA, META_FILE, FileRecord, Store
from tests.core.index_snapshot import assert_same_index, snapshot


def cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def _path(docs: Path, rel: str) -> str:
    return str(docs / rel)


def test_doctor_finds_and_repairs_every_kind_of_damage(tmp_path, docs, tiny_encoder, tiny_model_dir, capsys):
    settings = load_settings(index_dir=tmp_path / "idx", model_dir=tiny_model_dir, device="cpu", extract_workers=1)
    Indexer(Store(settings.index_dir), settings, tiny_encoder).index([docs])
    clean = snapshot(settings.index_dir)
    healthy = doctor.check(settings.index_dir)
    assert healthy.ok and not healthy.problems and healthy.stats["indexed"] == 7

    store = Store(settings.index_dir)
    chunk = store.chunks_of(_path(docs, 'kitchen/bread.md'))[0].as_row()
    # orphan chunks, a duplicated chunk, a file marked indexed without its chunks, a failed file with chunks
    store.chunks.add(pa.Table.from_pylist([{**chunk, "path": "/gone/ghost.txt", "id": "ghost:0"}],
                                          schema=CHUNKS_SCHEMA))
    store.chunks.add(pa.Table.from_pylist([chunk], schema=CHUNKS_SCHEMA))
    store.replace_chunks([_path(docs, 'energy/solar.txt')], [])  # its files row stays
    cairo = store.file_records()[_path(docs, "ar/cairo.txt")]
    store.upsert_files([FileRecord(**{**cairo.as_row(), "status": "failed", "reason": "corrupt"})])
    # a duplicated files row
    tokyo = store.file_records()[_path(docs, "ja/tokyo.txt")]
    store.files.add(pa.Table.from_pylist([tokyo.as_row()], schema=FILES_SCHEMA))
    # a duplicated vector, an orphan vector, a missing vector
    vec = store.vectors.search().limit(1).to_arrow()
    store.vectors.add(vec)
    store.vectors.add(vec.set_column(0, "text_hash", pa.array(["0" * 40])))
    moscow = store.chunks_of(_path(docs, 'ru/moscow.txt'))[0].text_hash
    store.delete_vectors([moscow])
    # the full-text index is gone
    for ix in store.chunks.list_indices():
        if "text" in ix.name:
            store.chunks.drop_index(ix.name)

    found = doctor.check(settings.index_dir)
    codes = {p.code: p for p in found.problems}
    assert not found.ok
    assert codes["orphan_chunks"].examples == ["/gone/ghost.txt"]
    assert set(codes["missing_chunks"].examples) == {_path(docs, "energy/solar.txt"), _path(docs, "kitchen/bread.md")}
    assert codes["failed_with_chunks"].examples == [_path(docs, "ar/cairo.txt")]
    assert codes["duplicate_files"].examples == [_path(docs, "ja/tokyo.txt")]
    assert codes["duplicate_vectors"].count == 1 and "0" * 40 in codes["orphan_vectors"].examples
    assert codes["missing_vectors"].severity == "info" and codes["missing_vectors"].examples == [moscow]
    assert codes["missing_indexes"].examples == ["chunks: full-text (BM25) index"]
    code, out, err = cli(capsys, "doctor", "--json", "--index-dir", settings.index_dir)
    assert code == 1 and not json.loads(out)["ok"]
    code, out, err = cli(capsys, "doctor", "--index-dir", settings.index_dir)
    assert code == 1 and "problem: orphan_chunks: 1" in out and "doctor --repair" in out

    code, out, err = cli(capsys, "doctor", "--repair", "--index-dir", settings.index_dir)
    assert code == 0, out + err
    assert "[fixed]" in out and "repaired: reset 4 files to be indexed again" in out, out
    after = doctor.check(settings.index_dir)
    assert after.ok and {p.code for p in after.problems} <= {"pending_files", "missing_vectors"}
    assert after.stats["pending"] == 4 and after.stats["failed"] == 0

    # The next index run finishes the job: the result is the clean index again.
    Indexer(Store(settings.index_dir), settings, tiny_encoder).index([docs])
    assert_same_index(snapshot(settings.index_dir), clean)
    final = doctor.check(settings.index_dir)
    assert final.ok and not final.problems


def test_an_old_schema_is_never_misread_and_repair_rebuilds_it(tmp_path, docs, capsys):
    idx = tmp_path / "idx"
    code, out, err = cli(capsys, "index", docs, "--index-dir", idx, "--keyword-only")
    assert code == 0
    meta = json.loads((idx / META_FILE).read_text())
    (idx / META_FILE).write_text(json.dumps({**meta, "schema_version": 0}))
    for args in (["search", "Berlin", "--mode", "keyword"], ["status"], ["index", docs, "--keyword-only"]):
        code, out, err = cli(capsys, *args, "--index-dir", idx)
        assert code == 1 and "schema version 0" in err and "doctor --repair" in err and err.count("\n") == 1, err
    code, out, err = cli(capsys, "doctor", "--index-dir", idx)
    assert code == 1 and "schema_version" in out
    code, out, err = cli(capsys, "doctor", "--repair", "--index-dir", idx)
    assert code == 0 and "rebuilt an empty index" in out, out
    code, out, err = cli(capsys, "index", docs, "--index-dir", idx, "--keyword-only")
    assert code == 0 and "indexed 7 files" in out
    code, out, err = cli(capsys, "search", "Hauptstadt", "--mode", "keyword", "--json", "--index-dir", idx)
    assert code == 0 and json.loads(out)["hits"][0]["path"].endswith("berlin.txt")

    # An index from a newer version of the app is left alone.
    (idx / META_FILE).write_text(json.dumps({"schema_version": 99}))
    before = sorted(p.relative_to(idx) for p in idx.rglob("*"))
    code, out, err = cli(capsys, "doctor", "--repair", "--index-dir", idx)
    assert code == 1 and "newer version" in out
    assert sorted(p.relative_to(idx) for p in idx.rglob("*")) == before


def test_unreadable_meta_and_damaged_table_are_repaired(tmp_path, docs, capsys):
    settings = load_settings(index_dir=tmp_path / "idx", model_dir=tmp_path / "no-model", extract_workers=1)
    Indexer(Store(settings.index_dir), settings, None).index([docs])
    clean = snapshot(settings.index_dir)
    meta = settings.index_dir / META_FILE

    meta.write_text("{ half a JSON obj")
    code, out, err = cli(capsys, "status", "--index-dir", settings.index_dir)
    assert code == 1 and "unreadable" in err and "doctor --repair" in err and err.count("\n") == 1
    code, out, err = cli(capsys, "doctor", "--repair", "--index-dir", settings.index_dir)
    assert code == 0 and "wrote a new index description" in out, out

    # A data file of the chunks table disappears (a failing disk, a bad sync tool).
    data = sorted((settings.index_dir / "lance" / "chunks.lance" / "data").glob("*.lance"))
    assert data
    for f in data:
        f.unlink()
    found = doctor.check(settings.index_dir)
    assert not found.ok and found.problems[0].code == "table_unreadable"
    fixed = doctor.repair(settings.index_dir)
    assert fixed.repaired and doctor.check(settings.index_dir).ok, fixed.as_json()
    Indexer(Store(settings.index_dir), settings, None).index([docs])
    assert_same_index(snapshot(settings.index_dir), clean)
