"""``jax.Train``: one training step of a ``GenericJaxModel`` per batch, in
the calling process, fed by batches streamed from the dask cluster."""

import logging
import os
import time

import numpy as np

from ..array import Array
from ..array_spec import ArraySpec
from ..batch_request import BatchRequest
from ..errors import BatchRequestError, PipelineConfigError, PipelineSetupError
from ..keys import ArrayKey
from ..nodes.batch_filter import BatchFilter
from ..profiling import Timing
from ..torch._common import checkpoint_name, latest_checkpoint, output_roi
from ._common import common_voxel_size, load_params, require_jax, save_params
from .generic_jax_model import GenericJaxModel

logger = logging.getLogger(__name__)


class _Consumer:
    def __init__(self):
        self.iteration = 0
        self.params = None
        self.feed = None
        self.writer = None


class Train(BatchFilter):
    """JAX implementation of ``gunpowder.nodes.GenericTrain``.

    Like ``torch.Train``, it runs in the calling process while the pipeline
    upstream streams batches from the dask cluster
    (``dpowder.engine.stream``). Parameters are initialised with
    ``model.initialize(jax.random.PRNGKey(42), inputs)`` on the first batch
    unless a checkpoint exists; checkpoints are the parameters pickled as
    numpy arrays, named ``{checkpoint_basename}_checkpoint_{iteration}``.

    Args:

        model (subclass of ``GenericJaxModel``): The model to train; it
            encapsulates the forward model, the loss and the optimizer.

        inputs (``dict``, ``string`` -> ``ArrayKey`` or ``np.ndarray``):
            The inputs of ``model.train_step``.

        outputs (``dict``, ``string`` or ``int`` -> ``ArrayKey``): Outputs
            of ``train_step`` to return as arrays (if requested downstream).

        gradients (``dict``, optional): Accepted for compatibility;
            gunpowder's jax node returns no gradients either.

        array_specs (``dict``, ``ArrayKey`` -> ``ArraySpec``, optional):
            Specs of the generated arrays; only fields that are not ``None``
            are used.

        checkpoint_basename (``string``, optional): Basename of checkpoints.

        save_every (``int``, optional): Iterations between checkpoints.

        keep_n_checkpoints (``int``, optional): How many checkpoints to
            keep (older ones are deleted); ``None`` keeps all.

        log_dir (``string``, optional): Directory for TensorBoard summaries
            (needs torch's ``SummaryWriter`` and ``tensorboard``).

        log_every (``int``, optional): Iterations between summaries.

        spawn_subprocess (``bool``, optional): Accepted for compatibility;
            training runs in the calling process.

        n_devices (``int``, optional): Accepted for compatibility; one
            device is used (``train_step`` gets ``pmapped=False``).

        validate_fn (function, optional): ``validate_fn(model, params)``
            returning a float or a dict of floats, logged every
            ``validate_every`` iterations.

        validate_every (``int``, optional): Iterations between validations.
    """

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
    ):
        require_jax("Train")
        if not isinstance(model, GenericJaxModel):
            raise PipelineConfigError(f"jax.Train: model must be a GenericJaxModel, got {type(model).__name__}")
        if not isinstance(inputs, dict) or not isinstance(outputs, dict):
            raise PipelineConfigError("jax.Train: inputs and outputs must be dicts")
        if validate_fn is not None and not validate_every:
            raise PipelineConfigError("jax.Train: validate_fn needs validate_every")
        self.model = model
        self.inputs = dict(inputs)
        self.outputs = dict(outputs)
        self.gradients = dict(gradients)
        self.array_specs = {} if array_specs is None else dict(array_specs)
        self.checkpoint_basename = checkpoint_basename
        self.save_every = int(save_every)
        self.keep_n_checkpoints = keep_n_checkpoints
        self.log_dir = log_dir
        self.log_every = int(log_every)
        self.spawn_subprocess = spawn_subprocess
        self.n_devices = n_devices
        self.validate_fn = validate_fn
        self.validate_every = validate_every
        self._consumer = _Consumer()

    def runs_on_driver(self):
        return True

    @property
    def iteration(self):
        return self._consumer.iteration

    @property
    def params(self):
        """The current parameters (``None`` before the first step)."""
        return self._consumer.params

    @property
    def stream_stats(self):
        feed = self._consumer.feed
        return None if feed is None else feed.stats

    def setup(self):
        for name, key in self.inputs.items():
            if isinstance(key, ArrayKey) and key not in self.spec:
                raise PipelineSetupError(
                    f"{self.describe()}: input {name!r} is {key}, which no node upstream provides; "
                    f"upstream provides {sorted(self.spec.keys())}"
                )
        common = common_voxel_size(self, [k for k in self.inputs.values() if isinstance(k, ArrayKey)])
        for key in self.outputs.values():
            spec = self.array_specs[key].copy() if key in self.array_specs else ArraySpec()
            if spec.voxel_size is None and not spec.nonspatial:
                if common is None:
                    raise PipelineSetupError(
                        f"{self.describe()}: the inputs have no common voxel size and array_specs gives "
                        f"none for {key}"
                    )
                spec.voxel_size = common
            if spec.interpolatable is None:
                spec.interpolatable = False
            spec.roi = None
            self.provides(key, spec)
        consumer = self._consumer
        checkpoint, consumer.iteration = latest_checkpoint(self.checkpoint_basename)
        if checkpoint is not None:
            logger.info("Resuming training from iteration %d, loading %s", consumer.iteration, checkpoint)
            consumer.params = load_params(checkpoint)
        if self.log_dir is not None and consumer.writer is None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as e:
                raise PipelineSetupError(
                    f"{self.describe()}: log_dir needs torch's SummaryWriter and tensorboard: "
                    f"pip install torch tensorboard"
                ) from e
            consumer.writer = SummaryWriter(self.log_dir)

    def teardown(self):
        consumer = self._consumer
        if consumer.feed is not None:
            consumer.feed.close()
            consumer.feed = None
        if consumer.writer is not None:
            consumer.writer.close()
            consumer.writer = None

    def prepare(self, request):
        deps = BatchRequest()
        for key in self.inputs.values():
            if isinstance(key, ArrayKey):
                if key not in request:
                    raise BatchRequestError(
                        f"{self.describe()} needs {key} to train, but the request does not contain it "
                        f"(requested: {sorted(request.keys())})"
                    )
                deps[key] = request[key].copy()
        return deps

    def provide(self, request):
        from ..engine.stream import Feed, filter_through

        consumer = self._consumer
        if consumer.feed is None:
            consumer.feed = Feed(self, self.get_upstream_provider())
        return filter_through(self, request, lambda r: consumer.feed.get(r, start_index=consumer.iteration))

    def process(self, batch, request):
        jax = require_jax("Train")
        timing = Timing(self, "process")
        timing.start()
        start = time.perf_counter()
        consumer = self._consumer
        inputs = {
            name: (batch[key].data if isinstance(key, ArrayKey) else key) for name, key in self.inputs.items()
        }
        if consumer.params is None:
            consumer.params = self.model.initialize(jax.random.PRNGKey(42), inputs)
        params, outputs, loss = self.model.train_step(consumer.params, inputs, False)
        input_rois = [batch[k].spec.roi for k in self.inputs.values() if isinstance(k, ArrayKey)]
        arrays = {}
        for name, key in self.outputs.items():
            if key not in request:
                continue
            if name not in outputs:
                raise BatchRequestError(
                    f"{self.describe()}: output {name!r} ({key}) is not among the outputs of "
                    f"train_step: {sorted(map(str, outputs))}"
                )
            data = np.asarray(outputs[name])
            spec = self.spec[key].copy()
            spec.roi = output_roi(self, key, data.shape, spec.voxel_size, input_rois, request, self.array_specs)
            spec.dtype = data.dtype
            arrays[key] = Array(data, spec)
        # the parameters change only once every output checked out
        consumer.params = params
        batch.arrays.update(arrays)
        losses = loss if isinstance(loss, dict) else {"loss": loss}
        batch.loss = float(sum(float(v) for v in losses.values())) if isinstance(loss, dict) else float(loss)
        consumer.iteration += 1
        batch.iteration = consumer.iteration

        if batch.iteration % self.save_every == 0:
            save_params(checkpoint_name(self.checkpoint_basename, batch.iteration), params)
            self._prune_checkpoints()
        if consumer.writer is not None and batch.iteration % self.log_every == 0:
            for name, value in losses.items():
                consumer.writer.add_scalar(name, float(value), batch.iteration)
        if self.validate_fn is not None and batch.iteration % self.validate_every == 0:
            result = self.validate_fn(self.model, params)
            for name, value in (result if isinstance(result, dict) else {"validation": result}).items():
                logger.info("validation %s=%f at iteration %d", name, float(value), batch.iteration)
                if consumer.writer is not None:
                    consumer.writer.add_scalar(name, float(value), batch.iteration)
        timing.stop()
        batch.profiling_stats.add(timing)
        logger.info(
            "Train process: iteration=%d loss=%.6f time=%.3f", batch.iteration, batch.loss, time.perf_counter() - start
        )

    def _prune_checkpoints(self):
        if self.keep_n_checkpoints is None:
            return
        import glob

        found = []
        for path in glob.glob(glob.escape(self.checkpoint_basename) + "_checkpoint_*"):
            suffix = path.rsplit("_", 1)[-1]
            if suffix.isdigit():
                found.append((int(suffix), path))
        for _, path in sorted(found)[: max(0, len(found) - self.keep_n_checkpoints)]:
            os.remove(path)
