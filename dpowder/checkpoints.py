"""Loading model checkpoints without running code they contain.

A pickle runs whatever code its author put in it, so a checkpoint from
somewhere else must not be unpickled unless its user says it is trusted:

* torch checkpoints load with ``torch.load(..., weights_only=True)``, which
  takes tensors, numbers, strings and containers of them (gunpowder's
  ``{"model_state_dict": ..., "optimizer_state_dict": ...}`` and plain state
  dicts load that way). A checkpoint holding other objects is refused with
  an ``UntrustedCheckpointError`` unless the node (or the CLI) is told to
  trust it.
* jax parameters are written as a numpy ``.npz`` archive (the leaves) with
  the tree's structure as JSON: nothing in it is code. Parameters whose tree
  holds other node types (named tuples, custom pytree classes) can only be
  pickled; such files, like the pickles of older versions, load only when
  trusted.
"""

import json
import logging
import os
import pickle
import zipfile

import numpy as np

from .errors import DataSourceError

logger = logging.getLogger(__name__)

__all__ = ["UntrustedCheckpointError", "check_torch", "load_torch", "save_jax_params", "load_jax_params"]


class UntrustedCheckpointError(DataSourceError):
    """A checkpoint can only be loaded by running code it contains (a full
    pickle), and it was not marked as trusted."""


def _refuse(path, what, opt_in, cause):
    return UntrustedCheckpointError(
        f"checkpoint {os.fspath(path)!r} {what}; loading it runs code stored in the file. If you trust "
        f"the file, pass {opt_in}. ({cause})"
    )


def load_torch(torch, path, map_location, trust_checkpoint=False, opt_in="trust_checkpoint=True"):
    """``torch.load(path)``: weights only, unless ``trust_checkpoint``.

    Args:

        torch: The torch module.

        path (str): The checkpoint file.

        map_location: Where tensors go (``torch.load``'s argument).

        trust_checkpoint (bool): Load any pickle (runs code in the file).

        opt_in (str): How the user says the file is trusted, for the error
            message (``trust_checkpoint=True`` on a node,
            ``--trust-checkpoint`` on the command line).
    """
    if trust_checkpoint:
        return torch.load(path, map_location=map_location, weights_only=False)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()
        raise _refuse(path, "holds objects other than tensors, numbers and containers", opt_in,
                      first[0] if first else type(e).__name__) from e  # fmt: skip


def check_torch(torch, path, trust_checkpoint=False, opt_in="trust_checkpoint=True"):
    """Raise ``UntrustedCheckpointError`` now (e.g. at a node's setup, on
    the driver, before any block runs) if the checkpoint at ``path`` could
    only be loaded as a full pickle and is not trusted. Reads the pickle's
    list of globals, not its tensors."""
    if trust_checkpoint:
        return
    try:
        unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:  # noqa: BLE001 -- not a torch zip checkpoint: loading it will tell
        return
    if unsafe:
        raise _refuse(path, f"holds objects other than tensors, numbers and containers ({', '.join(unsafe)})", opt_in,
                      "torch.load(weights_only=True) refuses them")  # fmt: skip


# -- jax parameters ------------------------------------------------------------------

_STRUCTURE = "__structure__"


def _describe(tree, leaves):
    """The JSON structure of ``tree`` (dicts with str/int keys, lists,
    tuples, ``None``, array leaves appended to ``leaves``), or ``None``
    where the tree has another node type."""
    if tree is None:
        return {"none": None}
    if isinstance(tree, (dict, list, tuple)) and type(tree) not in (dict, list, tuple):
        return None  # a subclass (a named tuple, an OrderedDict) would come back as its base
    if isinstance(tree, dict):
        if not all(isinstance(k, (str, int)) and not isinstance(k, bool) for k in tree):
            return None
        items = []
        for k, v in tree.items():
            sub = _describe(v, leaves)
            if sub is None:
                return None
            items.append([k, sub])
        return {"dict": items}
    if isinstance(tree, (list, tuple)):
        subs = [_describe(v, leaves) for v in tree]
        if any(s is None for s in subs):
            return None
        return {type(tree).__name__: subs}
    leaf = np.asarray(tree)
    if leaf.dtype.hasobject:
        return None
    leaves.append(leaf)
    return {"leaf": len(leaves) - 1}


def _rebuild(structure, archive):
    ((kind, value),) = structure.items()
    if kind == "none":
        return None
    if kind == "leaf":
        return archive[f"leaf_{value}"]
    if kind == "dict":
        return {k: _rebuild(v, archive) for k, v in value}
    items = [_rebuild(v, archive) for v in value]
    return tuple(items) if kind == "tuple" else items


def save_jax_params(jax, path, params):
    """Write ``params`` (a pytree) atomically: as ``.npz`` (no code) when
    the tree is made of dicts, lists, tuples and arrays, else as a pickle
    (with a warning: loading it will need ``trust_checkpoint=True``)."""
    params = jax.device_get(params)
    leaves = []
    structure = _describe(params, leaves)
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        if structure is not None:
            np.savez(
                f,
                **{f"leaf_{i}": leaf for i, leaf in enumerate(leaves)},
                **{_STRUCTURE: np.array(json.dumps(structure))},
            )
        else:
            logger.warning(
                "checkpoint %s: the parameters hold pytree nodes other than dicts, lists and tuples; writing a "
                "pickle, which loads only with trust_checkpoint=True", path,
            )  # fmt: skip
            pickle.dump(params, f)
    os.replace(tmp, path)


def load_jax_params(path, trust_checkpoint=False, opt_in="trust_checkpoint=True"):
    """The parameters saved by ``save_jax_params`` at ``path``. A ``.npz``
    checkpoint always loads; a pickled one (older versions, or trees with
    other node types) only with ``trust_checkpoint``, since unpickling runs
    code in the file."""
    if zipfile.is_zipfile(path):
        with np.load(path, allow_pickle=False) as archive:
            if _STRUCTURE not in archive.files:
                raise DataSourceError(
                    f"checkpoint {os.fspath(path)!r} is an .npz archive without {_STRUCTURE!r}: not dpowder jax parameters"
                )
            return _rebuild(json.loads(str(archive[_STRUCTURE])), archive)
    if not trust_checkpoint:
        raise _refuse(path, "is a pickle (jax parameters of an older version, or a tree of custom nodes)", opt_in,
                      "dpowder now writes jax parameters as .npz")  # fmt: skip
    with open(path, "rb") as f:
        return pickle.load(f)
