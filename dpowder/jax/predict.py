"""``jax.Predict``: run a ``GenericJaxModel`` on the arrays of a batch."""

import numpy as np

from ..array import Array
from ..array_spec import ArraySpec
from ..batch_request import BatchRequest
from ..engine import worker_cache
from ..errors import BatchRequestError, PipelineConfigError, PipelineSetupError
from ..keys import ArrayKey
from ..nodes.batch_filter import BatchFilter
from ..torch._common import output_roi
from ._common import common_voxel_size, load_params, require_jax
from .generic_jax_model import GenericJaxModel


class Predict(BatchFilter):
    """JAX implementation of ``gunpowder.nodes.Predict``.

    Runs in the task of each batch, anywhere; the parameters are loaded (or
    initialised) once per process and reused.

    Args:

        model (subclass of ``GenericJaxModel``): The model to use for
            prediction; ``model.forward(params, inputs)`` is called.

        inputs (``dict``, ``string`` -> ``ArrayKey``): The inputs of
            ``forward``.

        outputs (``dict``, ``string`` or ``int`` -> ``ArrayKey``): Outputs
            of ``forward`` to return as arrays (if requested downstream).

        array_specs (``dict``, ``ArrayKey`` -> ``ArraySpec``, optional):
            Specs of the generated arrays; only fields that are not ``None``
            are used.

        checkpoint (``string``, optional): Parameters saved by
            ``jax.Train``; without it, ``model.initialize`` with
            ``jax.random.PRNGKey(42)`` gives them.

        spawn_subprocess (``bool``, optional): Accepted for compatibility;
            batches already run in dask worker processes.
    """

    def __init__(self, model, inputs, outputs, array_specs=None, checkpoint=None, spawn_subprocess=False):
        require_jax("Predict")
        if not isinstance(model, GenericJaxModel):
            raise PipelineConfigError(f"jax.Predict: model must be a GenericJaxModel, got {type(model).__name__}")
        if not isinstance(inputs, dict) or not isinstance(outputs, dict) or not outputs:
            raise PipelineConfigError("jax.Predict: inputs and outputs must be dicts (outputs not empty)")
        self.model = model
        self.inputs = dict(inputs)
        self.outputs = dict(outputs)
        self.array_specs = {} if array_specs is None else dict(array_specs)
        self.checkpoint = checkpoint
        self.spawn_subprocess = spawn_subprocess

    def setup(self):
        for name, key in self.inputs.items():
            if key not in self.spec:
                raise PipelineSetupError(
                    f"{self.describe()}: input {name!r} is {key}, which no node upstream provides; "
                    f"upstream provides {sorted(self.spec.keys())}"
                )
        common = common_voxel_size(self, list(self.inputs.values()))
        for key in self.outputs.values():
            spec = self.array_specs[key].copy() if key in self.array_specs else ArraySpec()
            if spec.voxel_size is None and not spec.nonspatial:
                if common is None:
                    raise PipelineSetupError(f"{self.describe()}: no common input voxel size for {key}")
                spec.voxel_size = common
            if spec.interpolatable is None:
                spec.interpolatable = False
            spec.roi = None
            self.provides(key, spec)

    def prepare(self, request):
        deps = BatchRequest()
        for key in self.inputs.values():
            if key not in request:
                raise BatchRequestError(
                    f"{self.describe()}: input {key} must be requested together with the outputs "
                    f"(requested: {sorted(request.keys())})"
                )
            deps[key] = request[key].copy()
        return deps

    def _params(self, inputs):
        def make():
            if self.checkpoint is not None:
                return load_params(self.checkpoint)
            jax = require_jax("Predict")
            return self.model.initialize(jax.random.PRNGKey(42), inputs)

        d = self.__dict__
        return worker_cache.get_or_create(("jax.Predict", d.get("_dp_build"), d.get("_dp_uid", id(self)), self.checkpoint), make)

    def process(self, batch, request):
        inputs = {name: batch[key].data for name, key in self.inputs.items()}
        outputs = self.model.forward(self._params(inputs), inputs)
        input_rois = [batch[k].spec.roi for k in self.inputs.values() if isinstance(k, ArrayKey)]
        result = batch.__class__()
        for name, key in self.outputs.items():
            if key not in request:
                continue
            if name not in outputs:
                raise BatchRequestError(
                    f"{self.describe()}: output {name!r} ({key}) is not among the outputs of forward: "
                    f"{sorted(map(str, outputs))}"
                )
            data = np.asarray(outputs[name])
            spec = self.spec[key].copy()
            spec.roi = output_roi(self, key, data.shape, spec.voxel_size, input_rois, request, self.array_specs)
            spec.dtype = data.dtype
            result[key] = Array(data, spec)
        return result
