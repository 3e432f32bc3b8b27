"""``GenericPredict``: what the Predict nodes of every framework share."""

import os

import numpy as np

from ..batch import Batch
from ..engine import record, worker_cache
from ..errors import PipelineConfigError, PipelineSetupError
from .model_node import ModelNode


class GenericPredict(ModelNode):
    """Base of the framework Predict nodes (gunpowder's ``GenericPredict``).

    Runs in the task of each batch, anywhere. A subclass sets ``framework``
    and implements ``predict(batch, request)``, returning a dict from output
    names to arrays (anything ``np.asarray`` takes) with at least the
    requested outputs; this base checks the inputs and outputs at setup,
    asks upstream for the inputs, and places the results: at the requested
    ROI, whose shape must be the model's output shape.

    Args:

        inputs (``dict``, ``string`` or ``int`` -> :class:`ArrayKey`): The
            model's inputs.

        outputs (``dict``, ``string`` or ``int`` -> :class:`ArrayKey`): The
            model's outputs to return as arrays (where requested).

        array_specs (``dict``, :class:`ArrayKey` -> :class:`ArraySpec`, optional):
            Specs of the generated arrays; only fields that are not ``None``
            are used (a ``roi`` is the ROI this node provides the output in,
            a ``dtype`` the one it is converted to).

        checkpoint (``string``, optional): A file of the model's
            parameters; it must exist at setup.

        spawn_subprocess (``bool``, optional): Accepted for compatibility;
            batches already run in dask worker processes.
    """

    def __init__(self, inputs, outputs, array_specs=None, checkpoint=None, spawn_subprocess=False):
        super().__init__(inputs, outputs, array_specs)
        if not self.outputs:
            raise PipelineConfigError(f"{self._label()}: outputs must not be empty")
        self.checkpoint = checkpoint
        self.spawn_subprocess = spawn_subprocess

    def setup(self):
        self._declare_outputs(keep_roi=True)
        if self.checkpoint is not None and not os.path.exists(self.checkpoint):
            raise PipelineSetupError(f"{self.describe()}: checkpoint {self.checkpoint!r} does not exist")

    def predict(self, batch, request):
        """The model's results for ``batch``: ``{output name: array}``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement predict()")

    def _once_per_process(self, make, *key):
        """``make()``, made once per process for this node (and ``key``)."""
        uid = record.uid(self)
        identity = (self._label(), record.build_id(self), id(self) if uid is None else uid, self.checkpoint)
        return worker_cache.get_or_create(identity + key, make)

    def process(self, batch, request):
        results = self.predict(batch, request)
        requested = {name: key for name, key in self.outputs.items() if key in request}
        data = {
            key: np.asarray(self._result(results, "output", name, key, "the model")) for name, key in requested.items()
        }
        rois = self._output_rois({key: value.shape for key, value in data.items()}, batch, request)
        out = Batch()
        for key, value in data.items():
            out[key] = self._output_array(key, value, rois[key])
        return out
