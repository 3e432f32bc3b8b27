"""What the jax nodes share."""

import os
import pickle


def require_jax(node_name):
    """``jax``, or an ``ImportError`` that says how to install it."""
    try:
        import jax
    except ImportError as e:
        raise ImportError(
            f"dpowder.jax.{node_name} needs JAX, which is not installed: pip install dpowder[jax]"
        ) from e
    return jax


def save_params(path, params):
    """Write ``params`` (a pytree) as numpy arrays, atomically."""
    import jax

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        pickle.dump(jax.device_get(params), f)
    os.replace(tmp, path)


def load_params(path):
    with open(path, "rb") as f:
        return pickle.load(f)


def common_voxel_size(node, keys):
    sizes = {node.spec[k].voxel_size for k in keys if k in node.spec}
    return sizes.pop() if len(sizes) == 1 else None
