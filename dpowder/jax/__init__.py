"""jax nodes (Train, Predict). Always importable: the framework itself is
imported only when a node is constructed, which raises a clear error naming
what to install if it is missing."""

from .._lazy import lazy_getattr

_LAZY = {"Train": "train", "Predict": "predict", "GenericJaxModel": "generic_jax_model"}


__getattr__ = lazy_getattr(__name__, _LAZY)
