"""What the jax nodes share beyond ``dpowder.framework_common``: their
checkpoints. Parameters are written as ``.npz`` (numpy arrays and the tree's
structure as JSON, no code); a pickled checkpoint (older versions, or a tree
of custom pytree nodes) runs code when loaded, so it loads only with
``trust_checkpoint=True`` (see ``dpowder.checkpoints``)."""

from ..checkpoints import load_jax_params, save_jax_params


def save_params(path, params):
    """Write ``params`` (a pytree), atomically."""
    import jax

    save_jax_params(jax, path, params)


def load_params(path, trust_checkpoint=False):
    """The parameters at ``path``; a pickle only with ``trust_checkpoint``."""
    return load_jax_params(path, trust_checkpoint)
