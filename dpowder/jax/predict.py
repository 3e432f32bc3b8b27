"""``jax.Predict``: run a ``GenericJaxModel`` on the arrays of a batch."""

import uuid

from ..engine import worker_cache
from ..errors import PipelineConfigError
from ..nodes.generic_predict import GenericPredict
from ._common import load_params
from .generic_jax_model import GenericJaxModel


class Predict(GenericPredict):
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
            ``jax.Train`` (it must exist at setup); without it,
            ``model.initialize`` with ``jax.random.PRNGKey(42)`` gives them.

        spawn_subprocess (``bool``, optional): Accepted for compatibility;
            batches already run in dask worker processes.

        trust_checkpoint (``bool``, optional): Also load a pickled
            checkpoint (older versions wrote pickles), which runs code stored
            in the file; by default only the ``.npz`` checkpoints that
            ``jax.Train`` writes load.
    """

    framework = "jax"

    def __init__(
        self, model, inputs, outputs, array_specs=None, checkpoint=None, spawn_subprocess=False, trust_checkpoint=False
    ):
        self._require()
        super().__init__(inputs, outputs, array_specs, checkpoint, spawn_subprocess)
        if not isinstance(model, GenericJaxModel):
            raise PipelineConfigError(f"{self._label()}: model must be a GenericJaxModel, got {type(model).__name__}")
        self.model = model
        self.trust_checkpoint = trust_checkpoint
        # names this node's cached parameters in every process, so that teardown can drop them
        self._cache_tag = f"jax.Predict-{uuid.uuid4().hex}"

    def _params(self, inputs):
        def make():
            if self.checkpoint is not None:
                return load_params(self.checkpoint, self.trust_checkpoint)
            return self.model.initialize(self._require().random.PRNGKey(42), inputs)

        return self._once_per_process(make, self._cache_tag)

    def teardown(self):
        """Drop the parameters from this process and the workers."""
        worker_cache.drop_everywhere(self._cache_tag, self)
        super().teardown()

    def predict(self, batch, request):
        inputs = {name: self._value(key, batch) for name, key in self.inputs.items()}
        return self.model.forward(self._params(inputs), inputs)
