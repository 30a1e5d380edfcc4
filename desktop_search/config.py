"""Settings for every part of the app: one frozen dataclass built from defaults, environment and flags.

User folders come from platformdirs and each has a ``DESKTOP_SEARCH_*`` override, so tests (and portable
installs) never touch the real home. Nothing here imports Qt or the ML stack: the CLI and the window read
settings before anything heavy loads.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import MISSING, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, get_args

import platformdirs

from desktop_search.core.location import IndexLocation, RemoteError, is_uri, parse_options
from desktop_search.core.pathmap import PathMap, parse_rules

APP_NAME = "desktop-search"
ENV_PREFIX = "DESKTOP_SEARCH_"

Device = Literal["auto", "cpu", "cuda", "mps"]
# int8: 1 byte per dimension + a scale per token (default); float16: 2 bytes; binary: 1 bit per dimension + a
# scale, scored against full-precision query vectors; pooled: int8 after merging similar tokens of a passage.
ColbertStorage = Literal["int8", "float16", "binary", "pooled"]
# CPU inference: an int8 copy of the model checked against fp32 at load (fast), or the exact fp32 model.
CpuPrecision = Literal["int8", "fp32"]
SearchMode = Literal["hybrid", "keyword"]
DEVICES: tuple[Device, ...] = get_args(Device)
COLBERT_STORAGE: tuple[ColbertStorage, ...] = get_args(ColbertStorage)
CPU_PRECISIONS: tuple[CpuPrecision, ...] = get_args(CpuPrecision)
SEARCH_MODES: tuple[SearchMode, ...] = get_args(SearchMode)
Fusion = Literal["rrf", "none"]  # how BM25 enters the final hybrid ranking (core/search.py)
FUSIONS: tuple[Fusion, ...] = get_args(Fusion)


def _env_path(name: str) -> Path | None:
    value = os.environ.get(ENV_PREFIX + name)
    return Path(value).expanduser() if value else None


def default_data_dir() -> Path:
    return _env_path("DATA_DIR") or Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def default_index_dir() -> Path:
    """The local index folder (a ``DESKTOP_SEARCH_INDEX_DIR`` that is a URI sets ``Settings.index_uri`` instead)."""
    if is_uri(os.environ.get(ENV_PREFIX + "INDEX_DIR")):
        return default_data_dir() / "index"
    return _env_path("INDEX_DIR") or default_data_dir() / "index"


def default_model_dir() -> Path:
    return _env_path("MODEL_DIR") or default_data_dir() / "models" / "bge-m3"


def default_config_dir() -> Path:
    return _env_path("CONFIG_DIR") or Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def default_cache_dir() -> Path:
    """Derived, rebuildable files (the int8 CPU copy of the model)."""
    return _env_path("CACHE_DIR") or Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))


def resources_dir() -> Path:
    """Where `resources/` lives: next to a frozen app's files, else at the top of the source tree."""
    override = _env_path("RESOURCES_DIR")
    if override:
        return override
    frozen_root = getattr(sys, "_MEIPASS", None)
    if frozen_root:
        return Path(frozen_root) / "resources"
    return Path(__file__).resolve().parent.parent / "resources"


@dataclass(frozen=True)
class Settings:
    """Every tunable the core reads. Build with :func:`load_settings`; derive variants with ``.with_(...)``."""

    index_dir: Path = field(default_factory=default_index_dir)
    model_dir: Path = field(default_factory=default_model_dir)
    device: Device = "auto"
    cpu_precision: CpuPrecision = "int8"
    # Chunking: BGE-M3 was trained on passages up to 8192 tokens, but retrieval precision and snippet
    # quality are better with paragraph-sized chunks; 512 is FlagEmbedding's own passage default.
    chunk_tokens: int = 512
    chunk_overlap_tokens: int = 48
    # Weights for dense, sparse, ColBERT, as in BGEM3FlagModel.compute_score(weights_for_different_modes=...).
    weights: tuple[float, float, float] = (0.4, 0.2, 0.4)
    candidates_per_mode: int = 100
    rerank_k: int = 50
    # Final hybrid ranking: "rrf" fuses the semantic ranking with the keyword (BM25) one by reciprocal rank,
    # 1/(rrf_k + semantic rank) + keyword_weight/(rrf_k + BM25 rank); "none" ranks by the semantic score alone.
    fusion: Fusion = "rrf"
    keyword_weight: float = 1.0
    rrf_k: int = 60
    colbert_storage: ColbertStorage = "int8"
    batch_tokens: int = 0  # padded tokens per forward pass; 0: the encoder's own (8192 on CPU, from GPU memory)
    max_file_bytes: int = 512 * 1024**2
    # A text file is decoded whole and cut into passages in memory: past these it fails as ``too_large``
    # (64 MiB of text is about 30,000 passages of prose; 20,000 passages bound memory to a few hundred MB).
    max_text_bytes: int = 64 * 1024**2
    max_chunks_per_file: int = 20_000
    extract_time_limit_s: float = 120.0
    extract_workers: int = 2
    # OCR of scanned pages and images (on by default; --no-ocr / the settings dialog turn it off). Recognised
    # pages are cached by content under ocr_cache_dir, so no page is ever recognised twice.
    ocr: bool = True
    ocr_cache_dir: Path = field(default_factory=lambda: default_cache_dir() / "ocr")
    # Extra recognition models for more scripts, installed by the wizard (core/ocr_models.py); ocr_primary names
    # the installed one that reads every page first (the user's choice; "" = the bundled Chinese/English models).
    ocr_models_dir: Path = field(default_factory=lambda: default_model_dir().parent / "ocr")
    ocr_primary: str = ""
    # Passwords the user gave for protected PDFs (--passwords-file, the failures list): tried on each protected
    # file; never written to the settings file or shown in a repr.
    document_passwords: tuple[str, ...] = field(default=(), repr=False)
    # A shared index on object storage (``s3://bucket/prefix``); empty: the local ``index_dir``. Storage options
    # (endpoint, region, profile, allow_http ...) go with it; secrets are never kept here (see core/location.py).
    index_uri: str = ""
    storage_options: tuple[tuple[str, str], ...] = ()
    # Readers of a shared index see what its writer committed within this many seconds.
    read_consistency_s: float = 5.0
    # FROM=TO prefix rules turning paths stored by the indexing machine into paths on this one (core/pathmap.py).
    path_map: tuple[tuple[str, str], ...] = ()

    @property
    def index(self) -> "Path | IndexLocation":
        """Where the index is: the local folder, or the shared location with its storage options."""
        if self.index_uri:
            return IndexLocation.parse(self.index_uri, self.storage_options)
        return self.index_dir

    @property
    def mirror_dir(self) -> Path | None:
        """Where a reader of the shared index keeps its local copy of the chunks table (core/store/mirror.py)."""
        if not self.index_uri:
            return None
        import hashlib

        key = hashlib.sha1(IndexLocation.parse(self.index_uri).uri.encode("utf-8")).hexdigest()[:16]
        return default_cache_dir() / "shared-index" / key

    @property
    def paths(self) -> PathMap:
        return PathMap(self.path_map)

    def with_(self, **changes: Any) -> "Settings":
        return replace(self, **changes)

    def validate(self) -> "Settings":
        if self.device not in DEVICES:
            raise ValueError(f"unknown device {self.device!r}; choose one of {', '.join(DEVICES)}")
        if self.cpu_precision not in CPU_PRECISIONS:
            raise ValueError(f"unknown CPU precision {self.cpu_precision!r}; choose one of {', '.join(CPU_PRECISIONS)}")
        if self.colbert_storage not in COLBERT_STORAGE:
            raise ValueError(f"unknown ColBERT storage {self.colbert_storage!r}; choose one of {', '.join(COLBERT_STORAGE)}")
        if (len(self.weights) != 3 or not all(math.isfinite(w) and w >= 0 for w in self.weights)
                or sum(self.weights) <= 0):
            raise ValueError("weights must be three non-negative numbers (dense, sparse, colbert) with a positive sum")
        if self.fusion not in FUSIONS:
            raise ValueError(f"unknown fusion {self.fusion!r}; choose one of {', '.join(FUSIONS)}")
        if self.keyword_weight < 0 or self.rrf_k < 1:
            raise ValueError("the keyword weight must be at least 0 and rrf_k at least 1")
        if not 16 <= self.chunk_tokens <= 8192:
            raise ValueError("chunk size must be between 16 and 8192 tokens")
        if not 0 <= self.chunk_overlap_tokens < self.chunk_tokens // 2:
            raise ValueError("chunk overlap must be at least 0 and less than half the chunk size")
        if self.index_uri:
            try:
                IndexLocation.parse(self.index_uri, self.storage_options)
            except RemoteError as e:
                raise ValueError(str(e)) from None
        if not 0 < self.read_consistency_s <= 3600:
            raise ValueError("the shared-index refresh interval must be between 0 and 3600 seconds")
        return self


def setting_default(name: str) -> Any:
    """The default of one Settings field (for the window's preferences and the core's keyword defaults, so the
    defaults are written once, above)."""
    f = Settings.__dataclass_fields__[name]
    return f.default_factory() if f.default is MISSING else f.default  # type: ignore[misc]


def load_settings(**overrides: Any) -> Settings:
    """Defaults <- environment (``DESKTOP_SEARCH_DEVICE`` ...) <- explicit overrides (None means 'not given')."""
    env: dict[str, Any] = {}
    if os.environ.get(ENV_PREFIX + "DEVICE"):
        env["device"] = os.environ[ENV_PREFIX + "DEVICE"]
    if os.environ.get(ENV_PREFIX + "CPU_PRECISION"):
        env["cpu_precision"] = os.environ[ENV_PREFIX + "CPU_PRECISION"]
    if os.environ.get(ENV_PREFIX + "COLBERT_STORAGE"):
        env["colbert_storage"] = os.environ[ENV_PREFIX + "COLBERT_STORAGE"]
    if is_uri(os.environ.get(ENV_PREFIX + "INDEX_DIR")):
        env["index_uri"] = os.environ[ENV_PREFIX + "INDEX_DIR"]
    try:
        if os.environ.get(ENV_PREFIX + "STORAGE_OPTIONS"):
            env["storage_options"] = parse_options(os.environ[ENV_PREFIX + "STORAGE_OPTIONS"])
        if os.environ.get(ENV_PREFIX + "PATH_MAP"):
            env["path_map"] = parse_rules(os.environ[ENV_PREFIX + "PATH_MAP"])
        if os.environ.get(ENV_PREFIX + "READ_CONSISTENCY_S"):
            env["read_consistency_s"] = float(os.environ[ENV_PREFIX + "READ_CONSISTENCY_S"])
    except ValueError as e:
        raise ValueError(f"environment: {e}") from None
    given = {k: v for k, v in overrides.items() if v is not None}
    if is_uri(given.get("index_dir")):  # --index-dir s3://bucket/prefix
        given["index_uri"] = str(given.pop("index_dir"))
    elif "index_dir" in given:
        env.pop("index_uri", None)  # an explicit local folder beats a URI in the environment
    for key in ("index_dir", "model_dir", "ocr_cache_dir", "ocr_models_dir"):
        if key in given:
            given[key] = Path(given[key]).expanduser().resolve()
    return Settings(**{**env, **given}).validate()
