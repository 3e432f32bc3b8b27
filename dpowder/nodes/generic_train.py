"""``GenericTrain``: what the Train nodes of every framework share."""

import logging
import os
import time

from ..errors import PipelineConfigError, PipelineSetupError
from ..framework_common import checkpoint_name, latest_checkpoint, prune_checkpoints
from .model_node import ModelNode
from ..profiling import Timing


class TrainState:
    """Training state that outlives the per-request copies of the node: the
    iteration, the feed of batches, the summary writer. Subclasses add what
    their framework keeps (parameters, hooks)."""

    def __init__(self):
        self.iteration = 0
        self.feed = None
        self.writer = None


class GenericTrain(ModelNode):
    """Base of the framework Train nodes (gunpowder's ``GenericTrain``).

    Training runs in the calling process (where the GPU is); the pipeline
    upstream of this node is planned and submitted ahead for the next
    iterations to the dask cluster (see ``dpowder.engine.stream``), so that
    batches are ready when the model wants them. The i-th training batch is
    made with a seed derived from the request's seed and i, so the same seed
    gives the same batches whatever the number of workers, and a resumed run
    continues the same sequence.

    A subclass sets ``framework`` (and ``state_type``, a ``TrainState``
    subclass, for its own state) and implements ``start()`` (at setup,
    before resuming), ``load_checkpoint(path)``, ``save_checkpoint(path)``
    and ``train_step(batch, request)``, which adds the requested outputs to
    ``batch`` and returns the loss (a float, or a dict of named losses that
    sum to it); ``stop()`` at teardown is optional. This base checks inputs
    and outputs at setup, asks upstream for the inputs, resumes from the
    newest checkpoint, counts iterations, saves checkpoints and writes the
    losses to TensorBoard.

    Args:

        inputs (``dict``, ``string`` or ``int`` -> :class:`ArrayKey`): The
            model's inputs.

        outputs (``dict``, ``string`` or ``int`` -> :class:`ArrayKey`): The
            model's outputs to return as arrays (where requested).

        gradients (``dict``, ``string`` or ``int`` -> :class:`ArrayKey`):
            Like ``outputs``, for the gradients of the loss.

        array_specs (``dict``, :class:`ArrayKey` -> :class:`ArraySpec`):
            Specs of the generated arrays; only fields that are not ``None``
            are used. A ``roi`` (world units) fixes where an output lies when
            it is not requested with one; by default it is centred on the
            inputs.

        checkpoint_basename (``string``): Basename of checkpoint files
            (``{basename}_checkpoint_{iteration}``).

        save_every (``int``): Iterations between checkpoints.

        keep_n_checkpoints (``int``): How many checkpoints to keep (older
            ones are deleted); ``None`` keeps all.

        log_dir (``string``): Directory for TensorBoard summaries (the
            losses), written when given.

        log_every (``int``): Iterations between summaries.

        spawn_subprocess (``bool``): Accepted for compatibility: training
            always runs in the calling process.
    """

    state_type = TrainState

    def __init__(
        self,
        inputs,
        outputs,
        gradients,
        array_specs,
        checkpoint_basename,
        save_every,
        keep_n_checkpoints,
        log_dir,
        log_every,
        spawn_subprocess,
        **mappings,
    ):
        super().__init__(inputs, outputs, array_specs, gradients=gradients, **mappings)
        if int(save_every) < 1 or int(log_every) < 1:
            raise PipelineConfigError(
                f"{self._label()}: save_every ({save_every}) and log_every ({log_every}) must be >= 1"
            )
        self.gradients = dict(gradients)
        self.checkpoint_basename = checkpoint_basename
        self.save_every = int(save_every)
        self.keep_n_checkpoints = keep_n_checkpoints
        self.log_dir = log_dir
        self.log_every = int(log_every)
        self.spawn_subprocess = spawn_subprocess
        self._consumer = self.state_type()

    # -- what subclasses implement ---------------------------------------------

    def start(self):
        """Get the model ready (device, hooks); called at setup."""

    def stop(self):
        """Release what ``start`` took; called at teardown."""

    def load_checkpoint(self, path):
        raise NotImplementedError(f"{type(self).__name__} does not implement load_checkpoint()")

    def save_checkpoint(self, path):
        raise NotImplementedError(f"{type(self).__name__} does not implement save_checkpoint()")

    def train_step(self, batch, request):
        raise NotImplementedError(f"{type(self).__name__} does not implement train_step()")

    def find_checkpoint(self):
        """``(path, iteration)`` of the newest checkpoint to resume from, or
        ``(None, 0)``; frameworks whose checkpoints are not single files
        (tensorflow's saver prefixes) override it."""
        return latest_checkpoint(self.checkpoint_basename)

    # -- driver-side consumer ----------------------------------------------------

    @property
    def _logger(self):
        # the subclass's module logs (e.g. ``dpowder.torch.train``)
        return logging.getLogger(type(self).__module__)

    def runs_on_driver(self):
        return True

    @property
    def iteration(self):
        """The number of training iterations done (including resumed ones)."""
        return self._consumer.iteration

    @property
    def stream_stats(self):
        """The ``StreamStats`` of the batches feeding this node (rates, time
        waited), or ``None`` before the first iteration."""
        feed = self._consumer.feed
        return None if feed is None else feed.stats

    def _result_mappings(self):
        return [("output", self.outputs), ("gradient", self.gradients)]

    def setup(self):
        self._declare_outputs(keep_roi=False)
        self.start()
        consumer = self._consumer
        checkpoint, consumer.iteration = self.find_checkpoint()
        if checkpoint is not None:
            self._logger.info("Resuming training from iteration %d, loading %s", consumer.iteration, checkpoint)
            self.load_checkpoint(checkpoint)
        else:
            self._logger.info("Starting training from scratch")
        if self.log_dir is not None and consumer.writer is None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as e:
                raise PipelineSetupError(
                    f"{self.describe()}: log_dir={self.log_dir!r} asks for TensorBoard summaries, which need "
                    f"torch's SummaryWriter and the tensorboard package: pip install torch tensorboard"
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
        self.stop()

    def provide(self, request):
        from ..engine.stream import Feed, filter_through

        consumer = self._consumer
        if consumer.feed is None:
            consumer.feed = Feed(self, self.get_upstream_provider())
        return filter_through(self, request, lambda r: consumer.feed.get(r, start_index=consumer.iteration))

    # -- one iteration -------------------------------------------------------------

    def process(self, batch, request):
        timing = Timing(self, "process")
        timing.start()
        start = time.perf_counter()
        consumer = self._consumer
        loss = self.train_step(batch, request)
        losses = loss if isinstance(loss, dict) else {"loss": loss}
        batch.loss = float(sum(float(value) for value in losses.values()))
        consumer.iteration += 1
        batch.iteration = consumer.iteration

        if batch.iteration % self.save_every == 0:
            path = checkpoint_name(self.checkpoint_basename, batch.iteration)
            self._logger.info("Creating checkpoint %s", path)
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            self.save_checkpoint(path)
            if self.keep_n_checkpoints is not None:
                prune_checkpoints(self.checkpoint_basename, self.keep_n_checkpoints)
        if consumer.writer is not None and batch.iteration % self.log_every == 0:
            for name, value in losses.items():
                consumer.writer.add_scalar(name, float(value), batch.iteration)
        timing.stop()
        batch.profiling_stats.add(timing)
        self._logger.info(
            "Train process: iteration=%d loss=%.6f time=%.3f", batch.iteration, batch.loss, time.perf_counter() - start
        )
