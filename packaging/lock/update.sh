#!/usr/bin/env bash
# Regenerate the committed lock from pyproject.toml: every transitive package pinned with its hashes.
#   bash packaging/lock/update.sh          (needs pip-tools: pip install "pip-tools==7.5.2")
# torch is left out on purpose: the README installs the CPU build first (`pip install torch==2.13.0`),
# and resolving it here would drag the CUDA packages of the PyPI wheel into the lock. opencv-python is left out
# too: rapidocr-onnxruntime declares it, but it carries Qt plugins of its own that clash with PySide6; the lock
# has opencv-python-headless (same cv2 module) instead, which is why the lock is installed with --no-deps.
# Raise a pin only after `python .ci/latest_deps.py` and the full suite pass with the newer version.
set -euo pipefail
cd "$(dirname "$0")/../.."
common=(--quiet --generate-hashes --strip-extras --unsafe-package torch --unsafe-package opencv-python --no-emit-index-url
        --no-emit-find-links --no-emit-trusted-host --newline LF)
# The test lock is the superset; the app lock is constrained to it so both carry the same versions.
pip-compile "${common[@]}" --extra test --extra package -o packaging/lock/requirements-test.txt pyproject.toml
pip-compile "${common[@]}" -c packaging/lock/requirements-test.txt -o packaging/lock/requirements.txt pyproject.toml
