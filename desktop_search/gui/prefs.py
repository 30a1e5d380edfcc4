"""Typed user preferences persisted with QSettings in an INI file in the config folder.

Each key (``Key``, as Buzz's ``Settings.Key``) has a type and a default, so the rest of the GUI reads plain Python
values; defaults of what the core also reads (device, weights, chunk size, ColBERT storage, refresh interval) are
taken from ``config.Settings``, so each is written once. The INI file lives under
``config.default_config_dir()`` (``DESKTOP_SEARCH_CONFIG_DIR`` in tests), never in the platform registry, so a
user can read, back up or delete it. ``to_settings`` turns preferences into the core's frozen Settings.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings

from desktop_search import config
from desktop_search.config import setting_default


class Key(str, enum.Enum):
    """Every preference key (the INI file's names are the values)."""

    SETUP_COMPLETED = "setup_completed"
    DEVICE = "device"
    WEIGHTS = "weights"
    CHUNK_TOKENS = "chunk_tokens"
    COLBERT_STORAGE = "colbert_storage"
    OCR = "ocr"
    CPU_PRECISION = "cpu_precision"
    INDEX_DIR = "index_dir"
    SHARED_INDEX = "shared_index"
    STORAGE_OPTIONS = "storage_options"
    PATH_MAP = "path_map"
    REFRESH_S = "refresh_s"
    MODEL_DIR = "model_dir"
    MANIFEST = "manifest"
    ENDPOINT = "endpoint"
    PROXY = "proxy"
    SHOW_SCORES = "show_scores"
    WINDOW_GEOMETRY = "window_geometry"
    WINDOW_STATE = "window_state"
    SPLITTER_SIZES = "splitter_sizes"
    RESULTS_COLUMNS = "results_columns"


@dataclass
class WatchedFolder:
    path: str
    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)


class Prefs:
    """Typed access to the INI file. Values are written through immediately (QSettings syncs on exit)."""

    DEFAULTS: dict[Key, Any] = {
        Key.SETUP_COMPLETED: False,
        Key.DEVICE: setting_default("device"),
        Key.WEIGHTS: list(setting_default("weights")),
        Key.CHUNK_TOKENS: setting_default("chunk_tokens"),
        Key.COLBERT_STORAGE: setting_default("colbert_storage"),
        Key.OCR: setting_default("ocr"),
        Key.CPU_PRECISION: "",  # "": the default (int8, or DESKTOP_SEARCH_CPU_PRECISION)
        Key.INDEX_DIR: "",  # "": the default folder (or DESKTOP_SEARCH_INDEX_DIR)
        # A shared index (s3://bucket/prefix) this window searches read-only; "": the own index. Only options
        # without secrets are kept here (keys go to the system keychain: core/location.py).
        Key.SHARED_INDEX: "",
        Key.STORAGE_OPTIONS: [],  # ["endpoint=https://minio.lab:9000", "region=eu-west-1", "profile=team"]
        Key.PATH_MAP: [],  # ["/srv/docs=/Volumes/docs"]
        Key.REFRESH_S: int(setting_default("read_consistency_s")),
        Key.MODEL_DIR: "",  # "": the default folder (or DESKTOP_SEARCH_MODEL_DIR)
        Key.MANIFEST: "",  # "": the bundled BGE-M3 manifest; else a mirror's or a fine-tuned model's
        Key.ENDPOINT: "",
        Key.PROXY: "",
        Key.SHOW_SCORES: False,
        Key.WINDOW_GEOMETRY: b"",
        Key.WINDOW_STATE: b"",  # docks and toolbars
        Key.SPLITTER_SIZES: [],  # results | preview
        Key.RESULTS_COLUMNS: [],  # column widths of the results list
    }

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path else config.default_config_dir() / "desktop-search.ini"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._qs = QSettings(str(self.path), QSettings.Format.IniFormat)

    def get(self, key: Key) -> Any:
        _check(key)
        default = self.DEFAULTS[key]
        raw = self._qs.value(key.value, None)
        if raw is None:
            return default
        # INI stores everything as text: convert back to the default's type.
        if isinstance(default, bool):
            return raw in (True, "true", "1", 1)
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, list):
            return json.loads(raw) if isinstance(raw, str) else list(raw)
        if isinstance(default, bytes):
            return bytes(raw) if not isinstance(raw, str) else raw.encode("latin-1")
        return str(raw)

    def set(self, key: Key, value: Any) -> None:
        _check(key)
        if isinstance(self.DEFAULTS[key], list):
            value = json.dumps(list(value))
        self._qs.setValue(key.value, value)
        self._qs.sync()

    # -- watched folders ------------------------------------------------------------------------------
    def folders(self) -> list[WatchedFolder]:
        raw = self._qs.value("folders", "[]")
        try:
            items = json.loads(raw) if isinstance(raw, str) else []
        except json.JSONDecodeError:
            items = []
        return [WatchedFolder(**item) for item in items if isinstance(item, dict) and "path" in item]

    def set_folders(self, folders: list[WatchedFolder]) -> None:
        self._qs.setValue("folders", json.dumps([f.__dict__ for f in folders], ensure_ascii=False))
        self._qs.sync()

    def to_settings(self) -> config.Settings:
        from desktop_search.core.location import parse_options, public_options
        from desktop_search.core.pathmap import parse_rules

        weights = self.get(Key.WEIGHTS)
        shared = self.get(Key.SHARED_INDEX)
        try:
            options = public_options(parse_options(self.get(Key.STORAGE_OPTIONS))) if shared else None
            path_map = parse_rules(self.get(Key.PATH_MAP)) or None
        except ValueError:  # a hand-edited INI file: ignore what cannot be read
            options, path_map = None, None
        return config.load_settings(
            index_dir=shared or self.get(Key.INDEX_DIR) or None,
            storage_options=options,
            path_map=path_map,
            read_consistency_s=float(self.get(Key.REFRESH_S)) if shared else None,
            model_dir=self.get(Key.MODEL_DIR) or None,
            device=self.get(Key.DEVICE),
            weights=tuple(float(w) for w in weights) if len(weights) == 3 else None,
            chunk_tokens=self.get(Key.CHUNK_TOKENS),
            colbert_storage=self.get(Key.COLBERT_STORAGE),
            cpu_precision=self.get(Key.CPU_PRECISION) or None,
            ocr=self.get(Key.OCR),
        )


def _check(key: object) -> None:
    """Only ``Key`` members name a preference: a misspelt member is an AttributeError (and a mypy error) where it
    is written, and a plain string, even one that is a key's INI name, is refused rather than silently read."""
    if not isinstance(key, Key):
        raise TypeError(f"preference keys are Key members, not {key!r}")
