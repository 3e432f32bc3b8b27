"""What the Train and Predict nodes of every framework (torch, jax,
tensorflow) share, written once: importing the framework only when a node
is made, checking and feeding the model's inputs, declaring and placing its
outputs, and naming and finding checkpoints. Nothing here imports a
framework."""

import glob
import importlib
import os
import re

from .coordinate import Coordinate
from .errors import BatchRequestError
from .roi import Roi

# framework -> (module, name in messages, what to install)
_FRAMEWORKS = {
    "torch": ("torch", "PyTorch", "dpowder[torch]"),
    "jax": ("jax", "JAX", "dpowder[jax]"),
    "tensorflow": ("tensorflow", "TensorFlow", "dpowder[tensorflow]"),
}


def require_framework(framework, node_name):
    """The framework's module, or an ``ImportError`` that says how to
    install it."""
    module, name, package = _FRAMEWORKS[framework]
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(
            f"dpowder.{framework}.{node_name} needs {name}, which is not installed: pip install {package}"
        ) from e


def checkpoint_name(basename, iteration):
    """gunpowder's checkpoint file name."""
    return f"{basename}_checkpoint_{iteration}"


def checkpoints(basename):
    """``[(iteration, path), ...]`` of the checkpoints of ``basename``,
    oldest first."""
    pattern = re.compile(re.escape(basename) + r"_checkpoint_(\d+)$")
    found = []
    for path in glob.glob(glob.escape(basename) + "_checkpoint_*"):
        match = pattern.match(path)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def latest_checkpoint(basename):
    """``(path, iteration)`` of the newest checkpoint of ``basename``, or
    ``(None, 0)``."""
    found = checkpoints(basename)
    if not found:
        return None, 0
    iteration, path = found[-1]
    return path, iteration


def prune_checkpoints(basename, keep):
    """Delete all but the ``keep`` newest checkpoints of ``basename``."""
    found = checkpoints(basename)
    for _, path in found[: max(0, len(found) - keep)]:
        os.remove(path)


def output_roi(node, key, data_shape, voxel_size, input_rois, request, array_specs):
    """Where output ``key`` of a network lies (world units): the requested
    ROI, else the ROI of its ``array_specs`` entry, else centred on the union
    of ``input_rois`` and snapped to the voxel grid. Its shape must be the
    network's output shape (the last ``len(voxel_size)`` axes of
    ``data_shape``), else ``BatchRequestError``."""
    if voxel_size is None:
        return None
    data_shape = tuple(data_shape)
    if len(data_shape) < len(voxel_size):
        raise BatchRequestError(
            f"{node.describe()}: the model's output for {key} has shape {data_shape}, fewer axes than "
            f"the {len(voxel_size)} spatial ones of its voxel size {voxel_size}"
        )
    shape = Coordinate(data_shape[-len(voxel_size):]) * voxel_size
    if key in request and request[key].roi is not None:
        roi, origin = request[key].roi, "requested"
    elif key in array_specs and array_specs[key].roi is not None:
        roi, origin = array_specs[key].roi, "given in array_specs"
    else:
        total = input_rois[0]
        for r in input_rois[1:]:
            total = total.union(r)
        return Roi((total.center - shape / 2) // voxel_size * voxel_size, shape)
    if roi.shape != shape:
        raise BatchRequestError(
            f"{node.describe()}: the model's output for {key} has shape {data_shape}, i.e. "
            f"{shape} in world units at voxel size {voxel_size}, but the ROI {origin} for {key} is "
            f"{roi} (shape {roi.shape}); make the two agree"
        )
    return roi
