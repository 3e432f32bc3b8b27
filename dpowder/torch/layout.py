"""Channels-last weights for a model on the CPU, kept only where they give
the very same bits, faster.

oneDNN, which runs torch's CPU convolutions, computes a convolution whose
weights are channels-last (``torch.channels_last_3d`` for ``Conv3d``)
without reordering its input and output on every layer: for the small 3D
networks of blockwise prediction the forward pass takes 15-20% less time
(0.042 against 0.052 s per 70^3 block, 2 threads of 1 core each). Whether
it is faster depends on the network (a one-layer net was slower), and
whether it gives the same bits depends on it too (a U-Net's transposed
convolution summed in another order). So, per process and per shape of the
model's inputs, ``LayoutChooser``:

1. runs the first forward pass with the model as given (its result is the
   block's), then once more with a channels-last copy of the model;
2. keeps the model as given unless every output of the copy is bit-identical
   (same dtype, shape and values; torch's summation order does not depend on
   the values, so one block tells it for all blocks of that shape);
3. then alternates the two for ``TRIALS`` timed passes each, and keeps the
   faster for every later pass.

The given model is never changed: the copy is ``copy.deepcopy(model)``, made
once per process (not for models over ``MAX_COPY_BYTES``). Config:
``dpowder.torch.channels_last: false`` turns it off.
"""

import copy
import logging
import statistics
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

import dask.config

logger = logging.getLogger(__name__)

TRIALS = 3  # timed forward passes of each layout before one is kept
MAX_COPY_BYTES = 512 << 20  # no channels-last copy of a larger model (a second copy of its weights)

Forward = Callable[[Any], dict[Any, Any]]  # model -> its outputs by name


def channels_last_copy(torch: Any, model: Any, device: Any) -> Any | None:
    """A channels-last copy of ``model`` where one could be faster: on the
    CPU, with 4D or 5D weights (2D or 3D convolutions, not both), the config
    not off; else None."""
    if getattr(device, "type", str(device)) != "cpu" or not dask.config.get("dpowder.torch.channels_last", True):
        return None
    tensors = list(model.parameters()) + list(model.buffers())
    ranks = {t.dim() for t in tensors} & {4, 5}
    if len(ranks) != 1 or sum(t.numel() * t.element_size() for t in tensors) > MAX_COPY_BYTES:
        return None
    layout = torch.channels_last_3d if ranks == {5} else torch.channels_last
    try:
        return copy.deepcopy(model).to(memory_format=layout)
    except Exception as error:  # a model that can't be copied runs as given
        logger.debug("no channels-last copy of %s: %s", type(model).__name__, error)
        return None


def same_outputs(torch: Any, given: dict[Any, Any], other: dict[Any, Any]) -> bool:
    """Whether two forward passes' outputs are the same tensors, bit for bit."""
    if given.keys() != other.keys():
        return False
    for name, a in given.items():
        b = other[name]
        if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)):
            return False
        if a.dtype != b.dtype or a.shape != b.shape or not torch.equal(a, b):
            return False
    return True


class _Shape:
    """What is known for inputs of one shape."""

    def __init__(self) -> None:
        self.state = "new"  # new -> checking -> trying, until a model is kept
        self.kept: Any = None
        self.times: dict[int, list[float]] = {0: [], 1: []}  # 0: given, 1: channels-last
        self.running = {0: 0, 1: 0}


class LayoutChooser:
    """Runs a model's forward passes with the model as given or with its
    channels-last copy (see the module's doc); safe to call from several
    threads at once."""

    def __init__(self, torch: Any, given: Any, channels_last: Any) -> None:
        self._torch = torch
        self._models = (given, channels_last)
        self._shapes: dict[Hashable, _Shape] = {}
        self._lock = threading.Lock()

    def kept(self, shape: Hashable) -> Any:
        """The model kept for inputs of ``shape`` (None while undecided)."""
        known = self._shapes.get(shape)
        return None if known is None else known.kept

    def run(self, shape: Hashable, forward: Forward) -> dict[Any, Any]:
        """``forward(model)`` with the model for inputs of ``shape``."""
        role: int | None = None  # which model a timed trial runs
        with self._lock:
            known = self._shapes.setdefault(shape, _Shape())
            model = known.kept if known.kept is not None else self._models[0]
            undecided = known.kept is None
            check = undecided and known.state == "new"
            if check:
                known.state = "checking"
            elif undecided and known.state == "trying":
                role = min((0, 1), key=lambda i: len(known.times[i]) + known.running[i])
                known.running[role] += 1
            # else: kept, or another thread is checking: the kept (or given) model
        if check:
            return self._check(known, forward)
        if role is not None:
            return self._timed(known, role, forward)
        return forward(model)

    def _check(self, known: _Shape, forward: Forward) -> dict[Any, Any]:
        given, channels_last = self._models
        try:
            outputs = forward(given)
        except BaseException:
            with self._lock:
                known.state = "new"  # the next block checks
            raise
        try:
            same = same_outputs(self._torch, outputs, forward(channels_last))
        except Exception as error:  # e.g. a view that needs contiguous memory
            logger.debug("channels-last forward pass failed: %s", error)
            same = False
        with self._lock:
            if same:
                known.state = "trying"
            else:
                known.kept = given
        return outputs

    def _timed(self, known: _Shape, role: int, forward: Forward) -> dict[Any, Any]:
        start = time.perf_counter()
        try:
            return forward(self._models[role])
        finally:
            seconds = time.perf_counter() - start
            with self._lock:
                known.running[role] -= 1
                known.times[role].append(seconds)
                if known.kept is None and all(len(t) >= TRIALS for t in known.times.values()):
                    medians = [statistics.median(known.times[i]) for i in (0, 1)]
                    known.kept = self._models[1] if medians[1] < medians[0] else self._models[0]
                    logger.debug("forward pass %.4f s as given, %.4f s channels-last", *medians)
