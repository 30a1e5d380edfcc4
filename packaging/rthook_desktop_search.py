"""PyInstaller runtime hook: make the frozen process look like a normal one before any app code is imported.

Runs before the launcher and before PyInstaller's own runtime hooks (custom hooks come first), so:
- the process environment (``desktop_search/environment.py``: ``TRANSFORMERS_NO_TF``, ...) is prepared before transformers (or anything importing it) loads;
- a windowed build's ``sys.stdout``/``sys.stderr`` (None) are replaced, since tqdm, logging and plain prints in
  the ML stack would raise on their first write;
- ``multiprocessing.freeze_support`` is *not* called here: at this point it is still the standard library's
  (a no-op outside Windows); ``packaging/launcher.py`` calls it after PyInstaller's hook has patched it.
Resources are found by ``desktop_search.config.resources_dir()``, which looks under ``sys._MEIPASS``.
"""

import os
import sys


def _rthook() -> None:
    from desktop_search.environment import prepare_process

    prepare_process()
    for name in ("stdout", "stderr"):
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, "w", encoding="utf-8"))
        if getattr(sys, "__" + name + "__") is None:
            setattr(sys, "__" + name + "__", getattr(sys, name))


_rthook()
del _rthook
