"""torch nodes (Train, Predict). Always importable: the framework itself is
imported only when a node is constructed, which raises a clear error naming
what to install if it is missing."""

_LAZY = {"Train": "train", "Predict": "predict"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
