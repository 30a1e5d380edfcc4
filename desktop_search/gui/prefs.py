"""Typed user preferences persisted with QSettings in an INI file in the config folder.

Each key has a type and a default, so the rest of the GUI reads plain Python values. The INI file lives under
``config.default_config_dir()`` (``DESKTOP_SEARCH_CONFIG_DIR`` in tests), never in the platform registry, so a
user can read, back up or delete it. ``to_settings`` turns preferences into the core's frozen Settings.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings

from desktop_search import config


@dataclass
class WatchedFolder:
    path: str
    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)


class Prefs:
    """Typed access to the INI file. Values are written through immediately (QSettings syncs on exit)."""

    DEFAULTS: dict[str, Any] = {
        "setup_completed": False,
        "device": "auto",
        "weights": [0.4, 0.2, 0.4],
        "chunk_tokens": 512,
        "colbert_storage": "int8",
        "ocr": True,
        "cpu_precision": "",  # "": the default (int8, or DESKTOP_SEARCH_CPU_PRECISION)
        "index_dir": "",
        # A shared index (s3://bucket/prefix) this window searches read-only; "": the own index. Only options
        # without secrets are kept here (keys go to the system keychain: core/location.py).
        "shared_index": "",
        "storage_options": [],  # ["endpoint=https://minio.lab:9000", "region=eu-west-1", "profile=team"]
        "path_map": [],  # ["/srv/docs=/Volumes/docs"]
        "refresh_s": 5,
        "model_dir": "",
        "manifest": "",  # "": the bundled BGE-M3 manifest; else a mirror's or a fine-tuned model's
        "endpoint": "",
        "proxy": "",
        "show_scores": False,
        "window_geometry": b"",
        "window_state": b"",  # docks and toolbars
        "splitter_sizes": [],  # results | preview
        "results_columns": [],  # column widths of the results list
    }

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path else config.default_config_dir() / "desktop-search.ini"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._qs = QSettings(str(self.path), QSettings.Format.IniFormat)

    def get(self, key: str) -> Any:
        default = self.DEFAULTS[key]
        raw = self._qs.value(key, None)
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

    def set(self, key: str, value: Any) -> None:
        if key not in self.DEFAULTS:
            raise KeyError(key)
        if isinstance(self.DEFAULTS[key], list):
            value = json.dumps(list(value))
        self._qs.setValue(key, value)
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

        weights = self.get("weights")
        shared = self.get("shared_index")
        try:
            options = public_options(parse_options(self.get("storage_options"))) if shared else None
            path_map = parse_rules(self.get("path_map")) or None
        except ValueError:  # a hand-edited INI file: ignore what cannot be read
            options, path_map = None, None
        return config.load_settings(
            index_dir=shared or self.get("index_dir") or None,
            storage_options=options,
            path_map=path_map,
            read_consistency_s=float(self.get("refresh_s")) if shared else None,
            model_dir=self.get("model_dir") or None,
            device=self.get("device"),
            weights=tuple(float(w) for w in weights) if len(weights) == 3 else None,
            chunk_tokens=self.get("chunk_tokens"),
            colbert_storage=self.get("colbert_storage"),
            cpu_precision=self.get("cpu_precision") or None,
            ocr=self.get("ocr"),
        )
