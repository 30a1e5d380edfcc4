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

Two more costs of the import are put off until something needs them:

- pandas (~0.3 s of CPU): ``pyarrow.dataset`` builds a constant with ``pa.scalar(True)`` at import, and
  pyarrow's scalar conversion asks its pandas shim whether pandas is installed, which imports pandas. Nothing in
  the app uses pandas. While LanceDB loads, ``import pandas`` fails, so the shim notes "no pandas"; a one-shot
  import hook then puts pyarrow's pandas integration back the moment anything really imports pandas (pyarrow
  re-checks on every call that needs pandas anyway; the hook also covers the calls that only ask whether an
  object is a pandas one).
- building the validators of pydantic models (~0.1 s): LanceDB's embedding registry, its query models and the
  namespace client's 218 request/response models are pydantic models. They are created with pydantic's
  ``defer_build``, so a model's validator is built the first time the model is used, which for the REST models
  is never for a local index.
"""

from __future__ import annotations

import importlib.abc
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

        def __getattr__(attr: str):  # PEP 562: only called for attributes the module does not have yet
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


class _PandasHidden(importlib.abc.MetaPathFinder):
    """``import pandas`` fails while this finder is first on ``sys.meta_path``."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name == "pandas" or name.startswith("pandas."):
            raise ModuleNotFoundError("pandas is not imported while LanceDB loads", name=name)
        return None


class _LoaderThen(importlib.abc.Loader):
    """A module's own loader, and ``then()`` once the module has run."""

    def __init__(self, loader: Any, then: Callable[[], None]) -> None:
        self._loader, self._then = loader, then

    def create_module(self, spec: Any) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        module.__loader__ = self._loader  # what pandas sees of itself is as usual
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        self._then()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


class _RestorePandasShim(importlib.abc.MetaPathFinder):
    """When pandas is really imported, tell pyarrow's pandas shim (which was told "no pandas"); then leave."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != "pandas":
            return None
        with _lock:
            if self in sys.meta_path:
                sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _LoaderThen(spec.loader, _tell_pyarrow_about_pandas)
        return spec


def _tell_pyarrow_about_pandas() -> None:
    try:
        from pyarrow.lib import _pandas_api

        _pandas_api.pd  # noqa: B018 - the shim imports pandas (now loaded) and its integration
    except Exception:  # noqa: BLE001 - a pandas pyarrow cannot use stays unused, as without this module
        pass


@contextmanager
def _without_pandas() -> Iterator[None]:
    if "pandas" in sys.modules or "pyarrow._dataset" in sys.modules:  # nothing to hide, or pyarrow asked already
        yield
        return
    hide = _PandasHidden()
    sys.meta_path.insert(0, hide)
    try:
        yield
    finally:
        sys.meta_path.remove(hide)
    if "pandas" not in sys.modules and not any(isinstance(f, _RestorePandasShim) for f in sys.meta_path):
        sys.meta_path.insert(0, _RestorePandasShim())


@contextmanager
def _deferred_pydantic_builds() -> Iterator[None]:
    try:
        from pydantic import BaseModel
    except ImportError:
        yield
        return
    config = BaseModel.model_config
    had, before = "defer_build" in config, config.get("defer_build")
    config["defer_build"] = True  # subclasses copy their bases' config when they are created
    try:
        yield
    finally:
        if had:
            config["defer_build"] = bool(before)
        else:
            config.pop("defer_build", None)


def import_lancedb() -> ModuleType:
    """``import lancedb`` with the namespace REST client's ``__init__``, the ``@override`` checks, pandas and the
    pydantic validators deferred (see the module docstring)."""
    with _lock:  # a second thread waits here until the first one's import is complete
        if "lancedb" in sys.modules:
            import lancedb
        else:
            defer_package_init(NAMESPACE_CLIENT)
            with _cheap_overrides(), _without_pandas(), _deferred_pydantic_builds():
                import lancedb
    return lancedb
