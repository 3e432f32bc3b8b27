"""Framework subpackages import their nodes on first use, so that
``import dpowder`` never imports torch, jax or tensorflow."""

import importlib
from types import ModuleType


def lazy_getattr(package, names):
    """A module ``__getattr__`` for ``package`` that imports each of
    ``names`` (public name -> submodule) when first asked for."""

    def __getattr__(name):
        if name in names:
            return getattr(importlib.import_module(f".{names[name]}", package), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__


class LazyModule:
    """A module imported when one of its attributes is first asked for:
    ``import dpowder`` stays free of zarr (and what it imports) until a zarr
    node is set up. Annotate it with the real module under
    ``TYPE_CHECKING`` so that the type checker sees through it."""

    __slots__ = ("_name", "_module")

    def __init__(self, name: str):
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attribute: str):
        module = self._module
        if module is None:
            module = self._module = importlib.import_module(self._name)
        return getattr(module, attribute)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}>"
