"""What this machine offers (GPU, CPU cores, RAM, free disk) and what indexing chosen folders will cost.

Used by the setup wizard before any heavy import: the GPU is found with ``nvidia-smi`` (or torch, only if it
is already imported) so the page appears instantly. The estimate scans the folders' file sizes only (no
reading), turns them into tokens with rough per-type ratios, and divides by a measured encoder speed.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

# Tokens per byte of file come from the extractor registry (each reader declares its own ratio).
# OCR: CPU-seconds per page (benchmarks/bench_ocr.py: 14.5-15.0 CPU s per A4 page at 200 dpi), divided by the cores.
# Images are counted as one page each; scanned PDFs cannot be told apart without opening them.
OCR_CORE_SECONDS_PER_PAGE = 15.0
# Index bytes per token with int8 ColBERT vectors (1 KB) plus dense/sparse/text/FTS overhead.
INDEX_BYTES_PER_TOKEN = 1300
# Default CPU speed (tokens/s for BGE-M3 on one laptop core class) when nothing has been measured yet.
FALLBACK_TOKENS_PER_S_PER_CORE = 150
# The app's GPU path (FlagEmbedding fp16, token-budget batches) measured on a lent GPU by benchmarks/bench_gpu.py
# (2026-11-26, SciFact abstracts of 494 tokens on average, full BGE-M3 architecture): the guess for a machine
# with an NVIDIA GPU until the model is installed and the wizard measures the real speed. Consumer and laptop
# GPUs are slower than this data-centre card, which the estimate says.
GPU_REFERENCE_TOKENS_PER_S = 128_900
GPU_REFERENCE_CARD = "NVIDIA H100 80GB HBM3"


@dataclass
class Hardware:
    gpu_name: str | None
    gpu_memory_gb: float | None
    apple_silicon: bool
    cpu_cores: int
    ram_gb: float | None
    disk_free_gb: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        lines = []
        if self.gpu_name:
            mem = f", {self.gpu_memory_gb:.0f} GB" if self.gpu_memory_gb else ""
            lines.append(f"GPU: {self.gpu_name}{mem}")
        elif self.apple_silicon:
            lines.append("GPU: Apple Silicon (Metal)")
        else:
            lines.append("GPU: none found — the CPU will do the work")
        lines.append(f"CPU: {self.cpu_cores} cores" + (f", {self.ram_gb:.0f} GB RAM" if self.ram_gb else ""))
        for where, gb in self.disk_free_gb.items():
            lines.append(f"Free disk at {where}: {gb:.1f} GB")
        return "\n".join(lines)


def _nvidia() -> tuple[str | None, float | None]:
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            if torch.cuda.is_available():
                props = torch.cuda.get_device_properties(0)
                return props.name, props.total_memory / 1024**3
        except Exception:
            pass
    exe = shutil.which("nvidia-smi")
    if not exe:
        return None, None
    try:
        out = subprocess.run(
            [exe, "--query-gpu=name,memory.total", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=5,
        ).stdout.strip().splitlines()
        if out:
            name, mem = (p.strip() for p in out[0].split(",", 1))
            return name, float(mem) / 1024
    except (OSError, ValueError, subprocess.SubprocessError):
        pass
    return None, None


def _ram_gb() -> float | None:
    try:
        import psutil

        return float(psutil.virtual_memory().total / 1024**3)
    except Exception:
        try:
            return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
        except (ValueError, OSError, AttributeError):
            return None


def free_gb(path: Path) -> float | None:
    """Free space (GB) on the disk ``path`` is or will be on (None: cannot be asked)."""
    p = Path(path)
    while not p.exists() and p != p.parent:
        p = p.parent  # the folder may not exist yet: ask about the disk it will be on
    try:
        return shutil.disk_usage(p).free / 1024**3
    except OSError:
        return None


def detect(locations: dict[str, Path] | None = None) -> Hardware:
    name, mem = _nvidia()
    disks = {}
    for label, path in (locations or {}).items():
        gb = free_gb(path)
        if gb is not None:
            disks[label] = gb
    return Hardware(
        gpu_name=name,
        gpu_memory_gb=mem,
        apple_silicon=sys.platform == "darwin" and platform.machine() == "arm64",
        cpu_cores=os.cpu_count() or 1,
        ram_gb=_ram_gb(),
        disk_free_gb=disks,
    )


@dataclass
class Estimate:
    files: int
    tokens: int
    seconds: float
    index_bytes: int
    tokens_per_s: float
    measured: bool
    ocr_pages: int = 0  # pages that will need OCR (images), counted in ``seconds``
    reference_card: str | None = None  # the GPU whose measured speed stands in for this machine's GPU

    def describe(self) -> str:
        mins = self.seconds / 60
        when = f"about {mins:.0f} minutes" if mins >= 1.5 else "about a minute or less"
        if mins >= 90:
            when = f"about {mins / 60:.1f} hours"
        basis = "measured on this machine" if self.measured else "a rough guess until the model is installed"
        if not self.measured and self.reference_card:
            basis = (f"as measured on an {self.reference_card}; most GPUs are slower, so a rough guess until the "
                     "model is installed and measured on yours")
        ocr = f", OCR of ≈ {self.ocr_pages} images included" if self.ocr_pages else ""
        return (f"{self.files} documents, ≈ {self.tokens / 1e6:.1f} M tokens: indexing takes {when} "
                f"({self.tokens_per_s:.0f} tokens/s, {basis}{ocr}); the index will need ≈ "
                f"{self.index_bytes / 1e9:.2f} GB.")


def estimate(folders: Iterable[Path], tokens_per_s: float | None, *, cpu_cores: int | None = None,
             time_budget_s: float = 2.0, ocr: bool = True, gpu_name: str | None = None) -> Estimate:
    """Scan file sizes under ``folders`` (stops after ``time_budget_s``, extrapolating) and estimate the cost,
    OCR of images included when ``ocr``. Without a measured ``tokens_per_s`` the speed is a guess: the GPU
    reference figure when the model will run on the GPU ``gpu_name``, else a per-core CPU figure."""
    from desktop_search.core.extract import for_path

    start = time.monotonic()
    files = ocr_pages = 0
    tokens = 0.0
    for folder in folders:
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for name in filenames:
                reader = for_path(name)
                if reader is None or name.startswith("."):
                    continue
                try:
                    size = os.stat(os.path.join(dirpath, name)).st_size
                except OSError:
                    continue
                files += 1
                tokens += size * reader.tokens_per_byte
                ocr_pages += ocr and reader.kind == "image"
            if time.monotonic() - start > time_budget_s:
                break
    measured = tokens_per_s is not None and tokens_per_s > 0
    cores = cpu_cores or os.cpu_count() or 1
    reference = GPU_REFERENCE_CARD if gpu_name and not measured else None
    if tokens_per_s is not None and measured:
        speed = tokens_per_s
    elif reference:
        speed = GPU_REFERENCE_TOKENS_PER_S
    else:
        speed = FALLBACK_TOKENS_PER_S_PER_CORE * cores
    ocr_s = ocr_pages * OCR_CORE_SECONDS_PER_PAGE / cores
    return Estimate(files, int(tokens), tokens / speed + ocr_s, int(tokens * INDEX_BYTES_PER_TOKEN), speed, measured,
                    ocr_pages, reference)


def benchmark_encoder(encoder: Any, seconds: float = 3.0) -> float:
    """Tokens per second of ``encoder`` on realistic multilingual passages (runs at least one batch)."""
    text = (
        "The committee reviewed the annual budget and approved new funding for public libraries. "
        "Die Bibliothek bleibt während der Ferien geöffnet. 図書館は午前九時から開いています。 "
        "Библиотека открыта с девяти утра. "
    ) * 6
    batch = [text] * 8
    n_tokens = sum(len(ids) for ids in encoder.tokenizer(batch)["input_ids"])
    encoder.encode(batch[:1])  # warm-up: first calls allocate and plan
    done, t0 = 0, time.monotonic()
    while True:
        encoder.encode(batch)
        done += n_tokens
        if time.monotonic() - t0 >= seconds:
            break
    return done / (time.monotonic() - t0)
