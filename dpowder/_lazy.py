"""Framework subpackages import their nodes on first use, so that
``import dpowder`` never imports torch, jax or tensorflow."""

import importlib


def lazy_getattr(package, names):
    """A module ``__getattr__`` for ``package`` that imports each of
    ``names`` (public name -> submodule) when first asked for."""

    def __getattr__(name):
        if name in names:
            return getattr(importlib.import_module(f".{names[name]}", package), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
