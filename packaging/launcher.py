"""The frozen app's main script: hand over to ``desktop_search.__main__.main`` and exit with its code.

``multiprocessing.freeze_support()`` is called here, first, and not only in a runtime hook: custom runtime hooks
run *before* PyInstaller's own ``pyi_rth_multiprocessing``, which is what makes ``freeze_support`` work on every
OS (the standard library's is a no-op outside Windows). By the time this script runs it is patched, so a spawned
worker (the PDF extractor pool, the int8 model build) is diverted here before any of the app is imported.
"""

import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()
    from desktop_search.__main__ import main

    sys.exit(main())
