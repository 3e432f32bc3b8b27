"""Optional third-party modules, as ``gunpowder.ext`` offers them.

Each name is the module, or, if it cannot be imported, a ``NoSuchModule``
whose attribute access re-raises the import error, so pipelines can write
``if isinstance(gp.ext.torch, gp.ext.NoSuchModule): ...``. Modules are
imported on first access (torch, jax and tensorflow take seconds to import),
so ``import dpowder`` stays cheap.

Names: ``dvision``, ``h5py``, ``pyklb``, ``tensorflow``, ``torch``,
``tensorboardX``, ``malis``, ``augment``, ``zarr``, ``ZarrFile``, ``daisy``,
``jax``, ``jnp`` (``jax.numpy``), ``haiku``, ``optax``.
"""

import importlib
import os
from typing import Any, Optional

__all__ = ["NoSuchModule", "ZarrFile"]  # noqa: F822 -- ZarrFile: the module __getattr__

# public name -> module to import
_MODULES = {
    "dvision": "dvision",
    "h5py": "h5py",
    "pyklb": "pyklb",
    "tensorflow": "tensorflow",
    "torch": "torch",
    "tensorboardX": "tensorboardX",
    "malis": "malis",
    "augment": "augment",
    "zarr": "zarr",
    "daisy": "daisy",
    "jax": "jax",
    "jnp": "jax.numpy",
    "haiku": "haiku",
    "optax": "optax",
}
__all__ += list(_MODULES)


class NoSuchModule:
    """Stands in for a module that could not be imported.

    Every attribute access raises the error the import raised (dunder
    lookups, which Python makes itself for ``copy``, ``pickle`` or
    ``repr``, raise ``AttributeError`` instead, so the stand-in can still be
    copied and printed).

    Args:

        name (str): The module's name.

        error (BaseException, optional): The import error; by default the
            exception being handled, else an ``ImportError`` naming the
            module.
    """

    def __init__(self, name: str, error: Optional[BaseException] = None):
        if error is None:
            import sys

            error = sys.exc_info()[1]
        if error is None:
            error = ImportError(f"No module named {name!r}", name=name)
        self._name = name
        self._error = error

    def __getattr__(self, item: str) -> Any:
        if item.startswith("__") and item.endswith("__"):
            raise AttributeError(item)
        raise self._error

    def __repr__(self) -> str:
        return f"NoSuchModule({self._name!r})"

    def __reduce__(self):
        return (NoSuchModule, (self._name, ImportError(str(self._error), name=self._name)))


class _ZarrFile:
    """A zarr container as a context manager, like ``h5py.File``: entering
    returns ``zarr.open(store, mode=mode)``; leaving does nothing (zarr
    writes through).

    Args:

        store (str, path-like or zarr store): The container; a path-like
            (``pathlib.Path``, ``py.path.local``) is turned into a string
            first, which zarr 3 requires.

        mode (str): ``"r"``, ``"r+"``, ``"a"`` (default), ``"w"`` or
            ``"w-"``.
    """

    def __init__(self, store: Any, mode: str = "a"):
        self.store = store
        self.mode = mode

    def __enter__(self):
        import zarr

        store = os.fspath(self.store) if isinstance(self.store, os.PathLike) else self.store
        return zarr.open(store, mode=self.mode)

    def __exit__(self, *args: Any) -> None:
        pass


# exported through ``__getattr__`` (``None`` without zarr, as in gunpowder)
_ZarrFile.__name__ = _ZarrFile.__qualname__ = "ZarrFile"


def _load(name: str) -> Any:
    if name == "ZarrFile":
        # gunpowder: ZarrFile is None where zarr cannot be imported
        return None if isinstance(_load_cached("zarr"), NoSuchModule) else _ZarrFile
    try:
        return importlib.import_module(_MODULES[name])
    except ImportError as e:
        return NoSuchModule(name, e)


def _load_cached(name: str) -> Any:
    value = globals().get(name)
    if value is None and name not in globals():
        value = _load(name)
        globals()[name] = value
    return value


def __getattr__(name: str) -> Any:
    if name in _MODULES or name == "ZarrFile":
        return _load_cached(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list:
    return sorted(set(globals()) | set(__all__))
