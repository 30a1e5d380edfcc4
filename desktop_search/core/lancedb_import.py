"""Importing LanceDB without paying for what a local index never uses.

``import lancedb`` imports ``lance_namespace``, which re-exports the request/response models of the generated
REST client ``lance_namespace_urllib3_client``. That package's ``__init__`` also imports every REST API class,
urllib3 and the API client: about two thirds of the whole ``import lancedb`` (0.7 s of 1.6 s on an idle
machine, several seconds on a busy one), before the window can answer a keyword search or the CLI a query.
lance (PR #9273) and Daft (PR #6328) fixed the same cost by importing the namespace client lazily.

``import_lancedb()`` does that from the outside: it registers the client package with its ``__path__`` but
without running its ``__init__``, so ``lance_namespace_urllib3_client.models`` (which ``lance_namespace``
needs) imports as usual and the REST API modules are not imported. The first access to any other attribute of
the package (``ApiClient``, ``__version__``…, i.e. a REST namespace really being used) runs the real
``__init__`` then, so nothing that needs the client breaks. No file of either library is changed.

While LanceDB's modules load, the ``overrides`` package's ``@override`` decorator is swapped for one that only
marks the method: the original finds each base class by disassembling the calling frame's bytecode, a
development-time check that costs ~0.25 s over LanceDB's 105 decorated methods. It is restored afterwards.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from contextlib import contextmanager
from types import ModuleType
from typing import Any, Callable, Iterator

NAMESPACE_CLIENT = "lance_namespace_urllib3_client"
_lock = threading.RLock()


def defer_package_init(name: str) -> bool:
    """Make package ``name`` importable with its ``__init__`` run on first attribute access instead of at
    import. Returns False (and changes nothing) when it is already imported or not installed."""
    with _lock:
        if name in sys.modules:
            return False
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            return False
        if spec is None or spec.loader is None or spec.submodule_search_locations is None:
            return False
        module = importlib.util.module_from_spec(spec)
        loading = threading.RLock()
        state = {"done": False}

        def __getattr__(attr: str) -> Any:  # PEP 562: only called for attributes the module does not have yet
            with loading:
                if state["done"]:
                    raise AttributeError(f"module {name!r} has no attribute {attr!r}")
                state["done"] = True
                del module.__dict__["__getattr__"]
                spec.loader.exec_module(module)  # type: ignore[union-attr]
            return getattr(module, attr)

        module.__dict__["__getattr__"] = __getattr__
        sys.modules[name] = module
        return True


def _mark_override(method: Callable[..., Any] | None = None, **_checks: Any) -> Any:
    """``overrides.override`` without the base-class check: marks the method as the original does."""
    if method is None:
        return _mark_override
    try:
        method.__override__ = True  # type: ignore[attr-defined]
    except AttributeError:  # a builtin or slotted callable: nothing to mark
        pass
    return method


@contextmanager
def _cheap_overrides() -> Iterator[None]:
    try:
        import overrides
    except ImportError:
        yield
        return
    saved = {name: getattr(overrides, name) for name in ("override", "overrides") if hasattr(overrides, name)}
    for name in saved:
        setattr(overrides, name, _mark_override)
    try:
        yield
    finally:
        for name, fn in saved.items():
            setattr(overrides, name, fn)


def import_lancedb() -> ModuleType:
    """``import lancedb`` with the namespace REST client's ``__init__`` deferred and LanceDB's ``@override``
    checks skipped (see the module docstring)."""
    with _lock:  # a second thread waits here until the first one's import is complete
        if "lancedb" in sys.modules:
            import lancedb
        else:
            defer_package_init(NAMESPACE_CLIENT)
            with _cheap_overrides():
                import lancedb
    module: ModuleType = lancedb
    return module
