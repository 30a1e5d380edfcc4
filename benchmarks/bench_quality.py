"""Retrieval quality of the app's keyword (and hybrid) search on the shared IR collections, against a reference BM25.

Each collection (SciFact, CISI, Cranfield, ARCD, XQuAD per language) is written out as one text file per document
and indexed through the app's real ``Indexer`` and ``Store`` (keyword-only unless ``--model-dir`` is given), then
every query goes through ``Searcher.search`` as a user's would; hits are files, so the metrics are per document.
In the same run a reference BM25 is computed with ``bm25s`` (k1 1.2, b 0.75, whole documents, bm25s' own
tokenizer's rules: lower-cased words of 2+ letters/marks/digits, no stop words) without stemming and with the
collection language's Snowball stemmer (PyStemmer). For Chinese and Thai, which have no spaces and no Snowball
stemmer, the reference tokens are character bigrams. On SciFact the reference
is also computed over the app's chunks (a document scores as its best chunk), which says what chunking costs.

Metrics: nDCG@10 (linear gains from the qrels, log2 discount) and Recall@100, averaged over queries with at least
one relevant document. With a random-weight model (the benchmark model) the semantic scores are noise, so hybrid
figures measure only that fusion keeps the keyword hits; keyword mode is the target.

    python benchmarks/bench_quality.py [--quick] [--collections scifact,cisi,...] [--model-dir M] [--jobs N]

``--jobs N`` runs N collections at a time, each in its own process (keyword-only runs; the figures are the same,
only the wall time changes).
"""

from __future__ import annotations

import ast
import csv
import json
import math
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import _common as c

XQUAD_LANGS = ("en", "es", "de", "el", "ru", "tr", "ar", "hi", "vi", "zh", "th", "ro")
SNOWBALL = {
    "en": "english", "es": "spanish", "de": "german", "el": "greek", "ru": "russian", "tr": "turkish",
    "ar": "arabic", "hi": "hindi", "ro": "romanian",
}
QUICK_QUERIES = 150  # per collection / XQuAD language in --quick mode


@dataclass
class Collection:
    name: str
    lang: str
    docs: dict[str, str]
    queries: dict[str, str]
    qrels: dict[str, dict[str, float]]  # query id -> doc id -> gain (> 0)


# -- loaders ------------------------------------------------------------------------------------------------
def load_scifact() -> Collection:
    root = c.CORPUS / "ir_scifact"
    csv.field_size_limit(1 << 30)
    docs: dict[str, str] = {}
    with (root / "hf_csv" / "corpus_train.csv").open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            try:
                s = ast.literal_eval(row["abstract"].replace("'\n '", "', '").replace('"\n "', '", "'))
                text = " ".join(s) if isinstance(s, (list, tuple)) else str(s)
            except (ValueError, SyntaxError):
                text = row["abstract"]
            docs[row["doc_id"]] = f"{row['title']}\n\n{text}"
    queries: dict[str, str] = {}
    with (root / "hf_csv" / "claims_validation.csv").open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            queries.setdefault(row["id"], row["claim"])
    return Collection("scifact", "en", docs, queries, _tsv_qrels(root / "beir_qrels" / "test.tsv"))


def _tsv_qrels(path: Path) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for line in path.read_text("utf-8").splitlines()[1:]:
        q, d, s = line.split("\t")
        if float(s) > 0:
            out.setdefault(q, {})[d] = float(s)
    return out


def _smart(path: Path, fields: str) -> dict[str, str]:
    """SMART-format records (.I id, then .T/.W/... sections) -> id -> text of the wanted sections."""
    out: dict[str, str] = {}
    cur, keep, parts = None, False, []
    for line in path.read_text("utf-8", errors="replace").splitlines():
        if line.startswith(".I"):
            if cur is not None:
                out[cur] = "\n".join(parts).strip()
            cur, keep, parts = line[2:].strip(), False, []
        elif re.match(r"^\.[A-Z]\s*$", line):
            keep = line[1] in fields
        elif keep:
            parts.append(line)
    if cur is not None:
        out[cur] = "\n".join(parts).strip()
    return out


def load_cisi() -> Collection:
    root = c.CORPUS / "ir_cisi"
    docs = _smart(root / "CISI.ALL", "TW")
    queries = _smart(root / "CISI.QRY", "W")
    qrels: dict[str, dict[str, float]] = {}
    for line in (root / "CISI.REL").read_text("utf-8").splitlines():
        p = line.split()
        if len(p) >= 2:
            qrels.setdefault(p[0], {})[p[1]] = 1.0
    return Collection("cisi", "en", docs, queries, qrels)


def load_cranfield() -> Collection:
    root = c.CORPUS / "ir_cranfield"
    docs = _smart(root / "cran.all.1400", "W")  # .W starts with the title
    raw = _smart(root / "cran.qry", "W")
    # cranqrel numbers the queries 1..225 in file order (the .I ids skip numbers)
    queries = {str(i + 1): text for i, text in enumerate(raw.values())}
    qrels: dict[str, dict[str, float]] = {}
    for line in (root / "cranqrel").read_text("utf-8").splitlines():
        p = line.split()
        if len(p) == 3 and 1 <= int(p[2]) <= 4:  # Cleverdon's codes: 1 = complete answer ... 4 = minimum interest
            qrels.setdefault(p[0], {})[p[1]] = float(5 - int(p[2]))
    return Collection("cranfield", "en", docs, queries, qrels)


def load_arcd() -> Collection:
    root = c.CORPUS / "ir_arcd_arabic_subset"
    docs = {d["_id"]: d["text"] for d in map(json.loads, (root / "corpus.jsonl").read_text("utf-8").splitlines())}
    queries = {q["_id"]: q["text"] for q in map(json.loads, (root / "queries.jsonl").read_text("utf-8").splitlines())}
    qrels = {q: r for q, r in _tsv_qrels(root / "qrels" / "test.tsv").items() if q in queries}
    return Collection("arcd", "ar", docs, queries, qrels)


def load_xquad(lang: str) -> Collection:
    data = json.loads((c.CORPUS / "ir_xquad_multilingual" / f"xquad.{lang}.json").read_text("utf-8"))
    docs: dict[str, str] = {}
    queries: dict[str, str] = {}
    qrels: dict[str, dict[str, float]] = {}
    for a, article in enumerate(data["data"]):
        for p, para in enumerate(article["paragraphs"]):
            doc_id = f"{a}-{p}"
            docs[doc_id] = para["context"]
            for qa in para["qas"]:
                queries[qa["id"]] = qa["question"]
                qrels[qa["id"]] = {doc_id: 1.0}
    return Collection(f"xquad_{lang}", lang, docs, queries, qrels)


def collections(names: list[str]) -> list[Collection]:
    out = []
    for name in names:
        if name.startswith("xquad_"):
            out.append(load_xquad(name.split("_", 1)[1]))
        else:
            out.append({"scifact": load_scifact, "cisi": load_cisi, "cranfield": load_cranfield, "arcd": load_arcd}[name]())
    return out


# -- metrics ------------------------------------------------------------------------------------------------
def ndcg_at(ranked: list[str], rel: dict[str, float], k: int = 10) -> float:
    dcg = sum(rel.get(d, 0.0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sum(g / math.log2(i + 2) for i, g in enumerate(sorted(rel.values(), reverse=True)[:k]))
    return dcg / ideal if ideal > 0 else 0.0


def recall_at(ranked: list[str], rel: dict[str, float], k: int = 100) -> float:
    return len(set(ranked[:k]) & set(rel)) / len(rel) if rel else 0.0


def evaluate(runs: dict[str, list[str]], coll: Collection) -> dict[str, float]:
    qids = [q for q in runs if coll.qrels.get(q)]
    if not qids:
        return {"ndcg@10": 0.0, "recall@100": 0.0, "queries": 0}
    return {
        "ndcg@10": round(sum(ndcg_at(runs[q], coll.qrels[q]) for q in qids) / len(qids), 4),
        "recall@100": round(sum(recall_at(runs[q], coll.qrels[q]) for q in qids) / len(qids), 4),
        "queries": len(qids),
    }


# -- reference BM25 -----------------------------------------------------------------------------------------
_NO_SPACE = re.compile(r"[\u0e00-\u0e7f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]+")


def _bigram_tokens(texts: list[str]) -> list[list[str]]:
    """Reference tokens for scripts without spaces: character bigrams of each run (plus other words as words)."""
    import regex

    word = regex.compile(r"[\p{L}\p{M}\p{N}]+")  # not \w, which cuts Thai words at every vowel sign
    out = []
    for t in texts:
        toks: list[str] = []
        for m in word.finditer(t.lower()):
            # a run such as "2015年黑豹队" or "NASUWT是什么" is split by script first (taken whole, it matched
            # nothing: 113 of 1190 Chinese questions had no reference hits)
            for w in re.findall(rf"{_NO_SPACE.pattern}|[^{_NO_SPACE.pattern[1:-2]}]+", m.group()):
                if _NO_SPACE.fullmatch(w):
                    toks.extend(w[i : i + 2] for i in range(max(1, len(w) - 1)))
                else:
                    toks.append(w)
        out.append(toks)
    return out


def _word_tokens(texts: list[str], stemmer) -> list[list[str]]:
    """bm25s' default tokenization (lower-cased words of 2+ characters, no stop words), except that a word is a
    run of letters, combining marks and digits: Python's ``\\w`` (bm25s' pattern) cuts Devanagari, Thai and
    vocalised Arabic words at every vowel sign, which made the Hindi reference ~0.2 nDCG worse than any real
    tokenizer."""
    import regex

    word = regex.compile(r"[\p{L}\p{M}\p{N}]{2,}")
    out = []
    for t in texts:
        toks = word.findall(t.lower())
        out.append(stemmer.stemWords(toks) if stemmer is not None else toks)
    return out


def reference_runs(doc_ids: list[str], texts: list[str], queries: dict[str, str], lang: str, stem: bool,
                   k: int = 100) -> dict[str, list[str]] | None:
    """bm25s (k1 1.2, b 0.75) over ``texts``; ``doc_ids`` may repeat (chunks): a document ranks by its best one."""
    import bm25s

    stemmer = None
    if stem:
        if lang not in SNOWBALL:
            return None
        import Stemmer

        stemmer = Stemmer.Stemmer(SNOWBALL[lang])
    qids = list(queries)
    if lang in ("zh", "th"):
        if stem:
            return None
        corpus_tokens = _bigram_tokens(texts)
        query_tokens = _bigram_tokens([queries[q] for q in qids])
    else:
        corpus_tokens = _word_tokens(texts, stemmer)
        query_tokens = _word_tokens([queries[q] for q in qids], stemmer)
    retriever = bm25s.BM25(k1=1.2, b=0.75)
    retriever.index(corpus_tokens, show_progress=False)
    vocab = retriever.vocab_dict
    runs: dict[str, list[str]] = {}
    n = min(len(texts), 4 * k)
    for q, toks in zip(qids, query_tokens):
        toks = [t for t in toks if t in vocab]
        if not toks:
            runs[q] = []
            continue
        scores = retriever.get_scores(toks)
        order = scores.argsort()[::-1][:n]
        seen: dict[str, None] = {}
        for i in order.tolist():
            if scores[i] <= 0:
                break
            seen.setdefault(doc_ids[i])
            if len(seen) >= k:
                break
        runs[q] = list(seen)
    return runs


# -- the app ------------------------------------------------------------------------------------------------
def index_collection(coll: Collection, work: Path, model_dir: Path | None, encoder) -> tuple[object, dict[str, str]]:
    from desktop_search.config import load_settings
    from desktop_search.core.indexer import Indexer
    from desktop_search.core.store import Store

    docs_dir = work / "docs"
    docs_dir.mkdir(parents=True)
    by_path: dict[str, str] = {}
    for i, (doc_id, text) in enumerate(coll.docs.items()):
        p = docs_dir / f"{i:06d}.txt"
        p.write_text(text, "utf-8")
        by_path[str(p)] = doc_id
    settings = load_settings(index_dir=work / "index", model_dir=model_dir or work / "no-model")
    store = Store(work / "index")
    Indexer(store, settings, encoder).index([docs_dir])
    store.optimize()
    return store, by_path


def app_runs(store, by_path: dict[str, str], queries: dict[str, str], mode: str, encoder, k: int = 100
             ) -> tuple[dict[str, list[str]], dict[str, float]]:
    from desktop_search.core.search import Searcher

    searcher = Searcher(store, encoder if mode == "hybrid" else None)
    runs: dict[str, list[str]] = {}
    times: list[float] = []
    n_hits: list[int] = []
    for q, text in queries.items():
        t = time.perf_counter()
        res = searcher.search(text, k=k, mode=mode)
        times.append(time.perf_counter() - t)
        runs[q] = [by_path[h.path] for h in res.hits if h.path in by_path]
        n_hits.append(len(res.hits))
    stats = {**c.percentiles(times), "mean_files_returned": round(sum(n_hits) / max(1, len(n_hits)), 1)}
    return runs, stats


def run_collection(coll: Collection, args, encoder) -> dict:
    queries = {q: t for q, t in coll.queries.items() if coll.qrels.get(q)}
    if args.quick and len(queries) > QUICK_QUERIES:
        queries = dict(list(queries.items())[:QUICK_QUERIES])
    work = Path(tempfile.mkdtemp(prefix=f"bench_quality_{coll.name}_"))
    out: dict = {"docs": len(coll.docs), "queries": len(queries), "lang": coll.lang}
    try:
        t0 = time.perf_counter()
        store, by_path = index_collection(coll, work, args.model_dir if encoder is not None else None, encoder)
        out["index_s"] = round(time.perf_counter() - t0, 1)
        out["chunks"] = store.count_chunks()
        modes = ["keyword"] + (["hybrid"] if encoder is not None else [])
        for mode in modes:
            runs, stats = app_runs(store, by_path, queries, mode, encoder)
            out[f"app_{mode}"] = {**evaluate(runs, coll), "latency": stats}
        ids, texts = list(coll.docs), list(coll.docs.values())
        for stem in (False, True):
            runs = reference_runs(ids, texts, queries, coll.lang, stem)
            out["ref_bm25_stemmed" if stem else "ref_bm25"] = evaluate(runs, coll) if runs is not None else None
        if coll.name == "scifact":  # what chunking costs a plain BM25: the app's chunks, best chunk per document
            rows = store.all_chunks(["path", "text"])
            chunk_ids = [by_path[r["path"]] for r in rows]
            for stem in (False, True):
                runs = reference_runs(chunk_ids, [r["text"] for r in rows], queries, coll.lang, stem)
                out["ref_bm25_chunks_stemmed" if stem else "ref_bm25_chunks"] = evaluate(runs, coll)
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run_logged(coll: Collection, args, encoder) -> dict:
    c.log(f"{coll.name}: {len(coll.docs)} docs")
    t = time.perf_counter()
    r = run_collection(coll, args, encoder)
    c.log(f"{coll.name}: app {r['app_keyword']['ndcg@10']} ref {r['ref_bm25'] and r['ref_bm25']['ndcg@10']} "
          f"stemmed {r['ref_bm25_stemmed'] and r['ref_bm25_stemmed']['ndcg@10']} ({time.perf_counter() - t:.0f} s)")
    return r


def _run_one(job: tuple[str, object]) -> dict:
    """One collection, keyword-only, in a worker process (``--jobs``)."""
    name, args = job
    return _run_logged(collections([name])[0], args, None)


def main(argv: list[str] | None = None) -> dict:
    p = c.parser(__doc__.splitlines()[0])
    p.add_argument("--collections", default=None,
                   help="comma-separated: scifact,cisi,cranfield,arcd,xquad_en,... (default: all; --quick: a subset)")
    p.add_argument("--jobs", type=int, default=1, help="collections run at a time, each in its own process "
                   "(keyword-only runs)")
    args = p.parse_args(argv)
    if args.collections:
        names = args.collections.split(",")
    elif args.quick:
        names = ["scifact", "arcd", "xquad_en", "xquad_de", "xquad_ru", "xquad_tr", "xquad_ar", "xquad_vi", "xquad_zh"]
    else:
        names = ["scifact", "cisi", "cranfield", "arcd", *(f"xquad_{l}" for l in XQUAD_LANGS)]
    result: dict = {"benchmark": "quality", "quick": args.quick, "machine": c.machine(), "collections": {}}
    if args.jobs > 1 and args.model_dir is None:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(args.jobs) as pool:
            done = dict(zip(names, pool.map(_run_one, [(name, args) for name in names])))
        result["collections"] = {name: done[name] for name in names}
    else:
        encoder = None
        if args.model_dir is not None:
            from desktop_search.core.encoder import Encoder

            encoder = Encoder(c.model_dir(args.model_dir), "cpu", "int8", cache_dir=c.INT8_CACHE)
        for coll in collections(names):
            result["collections"][coll.name] = _run_logged(coll, args, encoder)
    result["summary"] = {
        name: {
            "app_keyword": r["app_keyword"]["ndcg@10"],
            "ref": r["ref_bm25"]["ndcg@10"] if r["ref_bm25"] else None,
            "ref_stemmed": r["ref_bm25_stemmed"]["ndcg@10"] if r["ref_bm25_stemmed"] else None,
            **({"app_hybrid": r["app_hybrid"]["ndcg@10"]} if "app_hybrid" in r else {}),
        }
        for name, r in result["collections"].items()
    }
    c.emit(result)
    return result


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
