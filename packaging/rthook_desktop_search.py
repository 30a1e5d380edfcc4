"""PyInstaller runtime hook: make the frozen process look like a normal one before any app code is imported.

Runs before the launcher and before PyInstaller's own runtime hooks (custom hooks come first), so:
- ``TRANSFORMERS_NO_TF`` / ``TOKENIZERS_PARALLELISM`` are set before transformers (or anything importing it) loads;
- a windowed build's ``sys.stdout``/``sys.stderr`` (None) are replaced, since tqdm, logging and plain prints in
  the ML stack would raise on their first write;
- ``multiprocessing.freeze_support`` is *not* called here: at this point it is still the standard library's
  (a no-op outside Windows); ``packaging/launcher.py`` calls it after PyInstaller's hook has patched it.
Resources are found by ``desktop_search.config.resources_dir()``, which looks under ``sys._MEIPASS``.
"""

import os
import sys


def _rthook() -> None:
    os.environ.setdefault("TRANSFORMERS_NO_TF", "1")
    os.environ.setdefault("USE_TF", "0")
    os.environ.setdefault("USE_FLAX", "0")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    for name in ("stdout", "stderr"):
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, "w", encoding="utf-8"))
        if getattr(sys, "__" + name + "__") is None:
            setattr(sys, "__" + name + "__", getattr(sys, name))


_rthook()
del _rthook
