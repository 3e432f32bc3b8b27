"""What the training nodes share: importing torch only when a node is made,
choosing the device, finding checkpoints, and placing outputs (the last two
are framework-free and used by the jax nodes too)."""

import glob
import logging
import re

from ..coordinate import Coordinate
from ..errors import BatchRequestError
from ..roi import Roi

logger = logging.getLogger(__name__)


def require_torch(node_name):
    """``torch``, or an ``ImportError`` that says how to install it."""
    try:
        import torch
    except ImportError as e:
        raise ImportError(
            f"dpowder.torch.{node_name} needs PyTorch, which is not installed: "
            f"pip install dpowder[torch]"
        ) from e
    return torch


def resolve_device(torch, device):
    """``device`` as a ``torch.device``; CUDA devices fall back to the CPU
    (with a warning) where CUDA is not available."""
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        logger.warning("device %s asked for, but CUDA is not available: using the CPU", device)
        return torch.device("cpu")
    return device


def checkpoint_name(basename, iteration):
    """gunpowder's checkpoint file name."""
    return f"{basename}_checkpoint_{iteration}"


def latest_checkpoint(basename):
    """``(path, iteration)`` of the newest checkpoint of ``basename``, or
    ``(None, 0)``."""
    pattern = re.compile(re.escape(basename) + r"_checkpoint_(\d+)$")
    found = []
    for path in glob.glob(glob.escape(basename) + "_checkpoint_*"):
        match = pattern.match(path)
        if match:
            found.append((int(match.group(1)), path))
    if not found:
        return None, 0
    iteration, path = max(found)
    return path, iteration


def output_roi(node, key, data_shape, voxel_size, input_rois, request, array_specs):
    """Where output ``key`` of a network lies (world units): the requested
    ROI, else the ROI of its ``array_specs`` entry, else centred on the union
    of ``input_rois`` and snapped to the voxel grid. Its shape must be the
    network's output shape (the last ``len(voxel_size)`` axes of
    ``data_shape``), else ``BatchRequestError``."""
    if voxel_size is None:
        return None
    shape = Coordinate(tuple(data_shape)[-len(voxel_size):]) * voxel_size
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
            f"{node.describe()}: the model's output for {key} has shape {tuple(data_shape)}, i.e. "
            f"{shape} in world units at voxel size {voxel_size}, but the ROI {origin} for {key} is "
            f"{roi} (shape {roi.shape}); make the two agree"
        )
    return roi
