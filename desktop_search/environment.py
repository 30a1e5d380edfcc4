"""The process environment the app runs in, prepared in one place before numpy, transformers or Qt load.

Every way in calls :func:`prepare_process` first: ``__main__`` (and through it the frozen launcher), the
PyInstaller runtime hook, ``cli.main``, the encoder before it imports the ML stack, the test conftest, the
benchmarks and the packaging scripts. Subprocesses that must look like the app get :func:`process_env`.

The garbage collector during start-up is prepared here too: the entry point turns collections off
(:func:`defer_collections`) while the app imports its libraries (hundreds of thousands of long-lived objects,
which every collection would walk again: ~0.1 s of a start), and :func:`settle_heap` freezes what is alive and
turns them back on once the index is open. Frozen objects are also left out of the collection at exit, which
otherwise costs a one-shot CLI search ~0.3 s after it has printed its results.
Imports nothing beyond ``os`` and ``gc``: it runs before everything else.
"""

from __future__ import annotations

import gc
import os
from typing import Mapping, MutableMapping

__all__ = ["DEFAULTS", "OFFLINE", "PRIVATE", "defer_collections", "prepare_process", "process_env", "settle_heap"]

# Set unless the user set them: each is a default a user may have a reason to override.
DEFAULTS: dict[str, str] = {
    # transformers must not import TensorFlow or Flax (seconds of start-up and GBs of RAM when installed).
    "TRANSFORMERS_NO_TF": "1",
    "USE_TF": "0",
    "USE_FLAX": "0",
    # The Rust tokenizers' thread pool deadlocks after a fork and competes with the encoder's own threads.
    "TOKENIZERS_PARALLELISM": "false",
    # numpy's OpenBLAS only runs the small query-time products (dense search, ColBERT rerank); waking its
    # threads costs more than they save, and they would compete with the encoder's threads. Read when numpy loads.
    "OPENBLAS_NUM_THREADS": "1",
    # Loading progress bars are noise on a CLI's stderr and invisible in a windowed app.
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
}

# After setup the app makes no network access: hub libraries must resolve everything locally. Forced.
OFFLINE: dict[str, str] = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}

# Nothing leaves the machine, and no library keeps an identifier of it: telemetry switches, forced always (a user
# setting cannot turn them back on). Read by the libraries once, when they initialise, so they are set first.
PRIVATE: dict[str, str] = {
    # ONNX Runtime (the int8 CPU encoder) ships 1DS telemetry in its Linux and macOS wheels too: without this it
    # writes a device id and an event database under ~/.cache/Microsoft/DeveloperTools/.onnxruntime and uploads
    # "ProcessInfo" events (OS, CPU, memory, container) to mobile.events.data.microsoft.com. Its Windows builds
    # use ETW instead, turned off by onnxruntime.disable_telemetry_events() where it is imported (quantize.py).
    "ORT_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",  # huggingface_hub's usage pings
    "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1",  # never send a stored Hugging Face token with a request
    "DO_NOT_TRACK": "1",  # the cross-tool convention (honoured by huggingface_hub, gradio, many CLIs)
}


def prepare_process(*, offline: bool = False, environ: MutableMapping[str, str] | None = None) -> None:
    """Put the defaults into ``environ`` (the process environment by default) where unset, force the telemetry
    switches off (``PRIVATE``); with ``offline`` also force the hub libraries offline."""
    env = os.environ if environ is None else environ
    for name, value in DEFAULTS.items():
        env.setdefault(name, value)
    env.update(PRIVATE)
    if offline:
        env.update(OFFLINE)


def process_env(base: Mapping[str, str] | None = None, *, offline: bool = False, **extra: str) -> dict[str, str]:
    """A copy of ``base`` (the process environment by default) prepared as above, plus ``extra``: the
    environment for a child process that must behave like the app."""
    env = dict(os.environ if base is None else base)
    prepare_process(offline=offline, environ=env)
    env.update(extra)
    return env


def defer_collections() -> None:
    """No garbage collections while the app starts (only the entry point calls this: see the module docstring).
    :func:`settle_heap` turns them back on."""
    gc.disable()


def settle_heap() -> None:
    """Start-up is over (the index is open, or the model loaded): exclude everything alive now from future
    collections and collect as usual from here on. Without the freeze a full collection, triggered by any
    allocation in any thread, walks the whole imported ML stack while holding the GIL (more than half a second
    with torch + transformers loaded, freezing the window)."""
    gc.freeze()
    gc.enable()
