"""What the jax nodes share beyond ``dpowder.framework_common``: their
checkpoints, the parameters pickled as numpy arrays."""

import os
import pickle


def save_params(path, params):
    """Write ``params`` (a pytree) as numpy arrays, atomically."""
    import jax

    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        pickle.dump(jax.device_get(params), f)
    os.replace(tmp, path)


def load_params(path):
    with open(path, "rb") as f:
        return pickle.load(f)
