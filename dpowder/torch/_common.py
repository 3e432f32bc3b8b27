"""What the torch nodes share beyond ``dpowder.framework_common``: the
device, and the model's arguments as tensors."""

import logging

import numpy as np

from ..errors import PipelineConfigError

logger = logging.getLogger(__name__)


def resolve_device(torch, device):
    """``device`` as a ``torch.device``; CUDA devices fall back to the CPU
    (with a warning) where CUDA is not available."""
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        logger.warning("device %s asked for, but CUDA is not available: using the CPU", device)
        return torch.device("cpu")
    return device


def arguments(node, torch, named, device):
    """``(args, kwargs)`` of the model for ``named`` (name or position ->
    value of an input, see ``ModelNode._value``), as tensors on ``device``;
    tensors (e.g. the model's outputs fed to a loss) are taken as they are.
    Positions must be numbered 0, 1, ..."""
    tensors = {
        name: value
        if isinstance(value, torch.Tensor)
        else torch.as_tensor(np.ascontiguousarray(np.asarray(value)), device=device)
        for name, value in named.items()
    }
    positions = sorted(k for k in tensors if isinstance(k, int))
    if positions != list(range(len(positions))):
        raise PipelineConfigError(
            f"{node.describe()}: positional arguments must be numbered 0, 1, ...; got {positions}"
        )
    return [tensors[i] for i in positions], {k: v for k, v in tensors.items() if isinstance(k, str)}
