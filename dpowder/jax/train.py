"""``jax.Train``: one training step of a ``GenericJaxModel`` per batch, in
the calling process, fed by batches streamed from the dask cluster."""

import logging

import numpy as np

from ..errors import PipelineConfigError
from ..nodes.generic_train import GenericTrain, TrainState
from ._common import load_params, save_params
from .generic_jax_model import GenericJaxModel

logger = logging.getLogger(__name__)


class _JaxState(TrainState):
    def __init__(self):
        super().__init__()
        self.params = None


class Train(GenericTrain):
    """JAX implementation of ``gunpowder.nodes.GenericTrain``: one
    ``model.train_step`` per batch, in the calling process, fed by batches
    made ahead on the dask cluster. Arguments are gunpowder's, plus:

    Args:

        trust_checkpoint (``bool``, optional): Also resume from a pickled
            checkpoint (older versions wrote pickles), which runs code stored
            in the file. Checkpoints are written as ``.npz`` (no code), which
            always load.
    """

    framework = "jax"
    state_type = _JaxState

    def __init__(
        self,
        model,
        inputs,
        outputs,
        gradients={},
        array_specs=None,
        checkpoint_basename="model",
        save_every=2000,
        keep_n_checkpoints=None,
        log_dir=None,
        log_every=1,
        spawn_subprocess=False,
        n_devices=None,
        validate_fn=None,
        validate_every=None,
        trust_checkpoint=False,
    ):
        self._require()
        super().__init__(
            inputs, outputs, gradients, array_specs, checkpoint_basename, save_every, keep_n_checkpoints, log_dir,
            log_every, spawn_subprocess,
        )  # fmt: skip
        if not isinstance(model, GenericJaxModel):
            raise PipelineConfigError(f"{self._label()}: model must be a GenericJaxModel, got {type(model).__name__}")
        if validate_fn is not None and not validate_every:
            raise PipelineConfigError(f"{self._label()}: validate_fn needs validate_every")
        self.model = model
        self.n_devices = n_devices
        self.validate_fn = validate_fn
        self.validate_every = validate_every
        self.trust_checkpoint = trust_checkpoint

    @property
    def params(self):
        """The current parameters (``None`` before the first step)."""
        return self._consumer.params

    def _result_mappings(self):
        # like gunpowder's jax node, no gradients are returned
        return [("output", self.outputs)]

    def load_checkpoint(self, path):
        self._consumer.params = load_params(path, self.trust_checkpoint)

    def save_checkpoint(self, path):
        save_params(path, self._consumer.params)

    def train_step(self, batch, request):
        state = self._consumer
        inputs = {name: self._value(key, batch) for name, key in self.inputs.items()}
        if state.params is None:
            state.params = self.model.initialize(self._require().random.PRNGKey(42), inputs)
        params, outputs, loss = self.model.train_step(state.params, inputs, False)
        data = {
            key: np.asarray(self._result(outputs, "output", name, key, "train_step"))
            for name, key in self.outputs.items()
            if key in request
        }
        rois = self._output_rois({key: value.shape for key, value in data.items()}, batch, request)
        # the parameters change only once every output checked out
        state.params = params
        for key, value in data.items():
            batch.arrays[key] = self._output_array(key, value, rois[key])
        return loss

    def process(self, batch, request):
        super().process(batch, request)
        if self.validate_fn is not None and batch.iteration % self.validate_every == 0:
            result = self.validate_fn(self.model, self.params)
            writer = self._consumer.writer
            for name, value in (result if isinstance(result, dict) else {"validation": result}).items():
                logger.info("validation %s=%f at iteration %d", name, float(value), batch.iteration)
                if writer is not None:
                    writer.add_scalar(name, float(value), batch.iteration)
