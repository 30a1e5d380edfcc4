"""The process environment the app runs in, prepared in one place before numpy, transformers or Qt load.

Every way in calls :func:`prepare_process` first: ``__main__`` (and through it the frozen launcher), the
PyInstaller runtime hook, ``cli.main``, the encoder before it imports the ML stack, the test conftest, the
benchmarks and the packaging scripts. Subprocesses that must look like the app get :func:`process_env`.
Imports nothing beyond ``os``: it runs before everything else.
"""

from __future__ import annotations

import os
from typing import Mapping, MutableMapping

__all__ = ["DEFAULTS", "OFFLINE", "prepare_process", "process_env"]

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


def prepare_process(*, offline: bool = False, environ: MutableMapping[str, str] | None = None) -> None:
    """Put the defaults into ``environ`` (the process environment by default) where unset; with ``offline``
    also force the hub libraries offline."""
    env = os.environ if environ is None else environ
    for name, value in DEFAULTS.items():
        env.setdefault(name, value)
    if offline:
        env.update(OFFLINE)


def process_env(base: Mapping[str, str] | None = None, *, offline: bool = False, **extra: str) -> dict[str, str]:
    """A copy of ``base`` (the process environment by default) prepared as above, plus ``extra``: the
    environment for a child process that must behave like the app."""
    env = dict(os.environ if base is None else base)
    prepare_process(offline=offline, environ=env)
    env.update(extra)
    return env
