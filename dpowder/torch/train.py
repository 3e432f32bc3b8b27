"""``torch.Train``: one training iteration per batch, in the calling process,
fed by a stream of batches made ahead on the dask cluster."""

import logging
import os
import time

import numpy as np

from ..array import Array
from ..array_spec import ArraySpec
from ..batch_request import BatchRequest
from ..errors import BatchFilterError, BatchRequestError, PipelineConfigError, PipelineSetupError
from ..keys import ArrayKey
from ..nodes.batch_filter import BatchFilter
from ..profiling import Timing
from ._common import checkpoint_name, latest_checkpoint, output_roi, require_torch, resolve_device

logger = logging.getLogger(__name__)


class _Consumer:
    """Training state that outlives the per-request copies of the node."""

    def __init__(self):
        self.iteration = 0
        self.feed = None
        self.writer = None
        self.hooks = []
        self.layers = {}


class Train(BatchFilter):
    """Torch implementation of ``gunpowder.nodes.GenericTrain``.

    Training runs in the calling process (where the GPU is); the pipeline
    upstream of this node is planned and submitted ahead for the next
    iterations to the dask cluster (see ``dpowder.engine.stream``), so that
    batches are ready when the model wants them. The user's loop stays
    gunpowder's: ``with build(p): for i in range(n): p.request_batch(r)``.
    The i-th training batch is made with a seed derived from the request's
    seed and i, so the same seed gives the same batches whatever the number
    of workers, and a resumed run continues the same sequence.

    Args:

        model (subclass of ``torch.nn.Module``): The model to train.

        loss: The torch loss to use.

        optimizer: The torch optimizer to use.

        inputs (``dict``, ``string`` or ``int`` -> :class:`ArrayKey`):
            Dictionary from the names (keyword arguments) or positions of the
            model's ``forward`` arguments to array keys.

        outputs (``dict``, ``string`` or ``int`` -> :class:`ArrayKey`):
            Dictionary from the names of tensors in the network to array
            keys. A string is the name of a submodule of the model whose
            output is taken; an integer is an index into the tuple the model
            returns. New arrays are made for each entry requested downstream.

        loss_inputs (``dict``, ``string`` or ``int`` -> :class:`ArrayKey`):
            The loss function's arguments: integers are positions, strings
            keyword names. Keys that are ``outputs`` take the model's tensor,
            others the batch's array.

        gradients (``dict``, ``string`` or ``int`` -> :class:`ArrayKey`, optional):
            Like ``outputs``, but the gradient of the loss with respect to
            the tensor is returned.

        array_specs (``dict``, :class:`ArrayKey` -> :class:`ArraySpec`, optional):
            Specs of the generated arrays; only fields that are not ``None``
            are used. A ``roi`` (world units) fixes where an output lies when
            it is not requested with one; by default it is centred on the
            inputs.

        checkpoint_basename (``string``, optional): Basename of checkpoint
            files (``{basename}_checkpoint_{iteration}``). Training resumes
            from the newest one (model, optimizer state and iteration).

        save_every (``int``, optional): Iterations between checkpoints.

        log_dir (``string``, optional): Directory for TensorBoard summaries
            (the loss), written when given.

        log_every (``int``, optional): Iterations between summaries.

        spawn_subprocess (``bool``, optional): Accepted for compatibility:
            training always runs in the calling process, while batches are
            made by dask workers.

        device (``string``, optional): The torch device, e.g. ``"cuda:1"``;
            ``"cuda"`` falls back to the CPU where CUDA is not available.
    """

    def __init__(
        self,
        model,
        loss,
        optimizer,
        inputs,
        outputs,
        loss_inputs,
        gradients={},
        array_specs=None,
        checkpoint_basename="model",
        save_every=2000,
        log_dir=None,
        log_every=1,
        spawn_subprocess=False,
        device="cuda",
    ):
        torch = require_torch("Train")
        for name, value in (("inputs", inputs), ("outputs", outputs), ("loss_inputs", loss_inputs), ("gradients", gradients)):
            if not isinstance(value, dict):
                raise PipelineConfigError(f"Train: {name} must be a dict, got {type(value).__name__}")
        if not isinstance(model, torch.nn.Module):
            raise PipelineConfigError(f"Train: model must be a torch.nn.Module, got {type(model).__name__}")
        if int(save_every) < 1 or int(log_every) < 1:
            raise PipelineConfigError(f"Train: save_every ({save_every}) and log_every ({log_every}) must be >= 1")
        if not model.training:
            logger.warning("Model is in evaluation mode during training. Consider using model.train()")
        self.model = model
        self.loss = loss
        self.optimizer = optimizer
        self.inputs = dict(inputs)
        self.outputs = dict(outputs)
        self.loss_inputs = dict(loss_inputs)
        self.gradients = dict(gradients)
        self.array_specs = {} if array_specs is None else dict(array_specs)
        self.checkpoint_basename = checkpoint_basename
        self.save_every = int(save_every)
        self.log_dir = log_dir
        self.log_every = int(log_every)
        self.spawn_subprocess = spawn_subprocess
        self.device = resolve_device(torch, device)
        self._consumer = _Consumer()

    # -- driver-side consumer ---------------------------------------------------

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

    def _data_keys(self):
        """Array keys read from the batch: inputs and the loss inputs that
        are not outputs of the model."""
        produced = set(self.outputs.values()) | set(self.gradients.values())
        keys = []
        for key in list(self.inputs.values()) + list(self.loss_inputs.values()):
            if isinstance(key, ArrayKey) and key not in produced and key not in keys:
                keys.append(key)
        return keys

    def setup(self):
        provided = sorted(self.spec.keys())
        produced = set(self.outputs.values()) | set(self.gradients.values())
        for role, mapping in (("input", self.inputs), ("loss input", self.loss_inputs)):
            for name, key in mapping.items():
                if isinstance(key, ArrayKey) and key not in produced and key not in self.spec:
                    raise PipelineSetupError(
                        f"{self.describe()}: {role} {name!r} is {key}, which no node upstream "
                        f"provides and which is not an output of the model; upstream provides {provided}"
                    )
        submodules = dict(self.model.named_modules())
        for role, mapping in (("output", self.outputs), ("gradient", self.gradients)):
            for name in mapping:
                if isinstance(name, str) and name not in submodules:
                    raise PipelineSetupError(
                        f"{self.describe()}: {role} {name!r} ({mapping[name]}) names no submodule of "
                        f"{type(self.model).__name__}; its submodules are {sorted(n for n in submodules if n)}"
                    )
                if not isinstance(name, (str, int)):
                    raise PipelineSetupError(f"{self.describe()}: {role} names must be strings or ints, got {name!r}")

        voxel_sizes = {self.spec[k].voxel_size for k in self.inputs.values() if isinstance(k, ArrayKey) and k in self.spec}
        common = voxel_sizes.pop() if len(voxel_sizes) == 1 else None
        for key in list(self.outputs.values()) + list(self.gradients.values()):
            spec = self.array_specs[key].copy() if key in self.array_specs else ArraySpec()
            if spec.voxel_size is None and not spec.nonspatial:
                if common is None:
                    raise PipelineSetupError(
                        f"{self.describe()}: the inputs have no common voxel size and no ArraySpec "
                        f"with a voxel_size is given for {key} in array_specs"
                    )
                spec.voxel_size = common
            if spec.interpolatable is None:
                spec.interpolatable = False
            spec.roi = None
            self.provides(key, spec)
        self._start()

    def _start(self):
        torch = require_torch("Train")
        consumer = self._consumer
        self.model.to(self.device)
        if isinstance(self.loss, torch.nn.Module):
            self.loss.to(self.device)
        for hook in consumer.hooks:
            hook.remove()
        consumer.hooks = []
        modules = dict(self.model.named_modules())
        for name in list(self.outputs) + list(self.gradients):
            if isinstance(name, str):
                consumer.hooks.append(modules[name].register_forward_hook(self._hook(name)))

        checkpoint, consumer.iteration = latest_checkpoint(self.checkpoint_basename)
        if checkpoint is not None:
            logger.info("Resuming training from iteration %d, loading %s", consumer.iteration, checkpoint)
            state = torch.load(checkpoint, map_location=self.device, weights_only=False)
            self.model.load_state_dict(state["model_state_dict"])
            self.optimizer.load_state_dict(state["optimizer_state_dict"])
        else:
            logger.info("Starting training from scratch")
        logger.info("Using device %s", self.device)

        if self.log_dir is not None and consumer.writer is None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as e:
                raise PipelineSetupError(
                    f"{self.describe()}: log_dir={self.log_dir!r} asks for TensorBoard summaries, which "
                    f"need the tensorboard package: pip install tensorboard"
                ) from e
            consumer.writer = SummaryWriter(self.log_dir)

    def _hook(self, name):
        layers = self._consumer.layers

        def save_layer(module, args, output):
            layers[name] = output

        return save_layer

    def teardown(self):
        consumer = self._consumer
        if consumer.feed is not None:
            consumer.feed.close()
            consumer.feed = None
        if consumer.writer is not None:
            consumer.writer.close()
            consumer.writer = None
        for hook in consumer.hooks:
            hook.remove()
        consumer.hooks = []

    # -- the request ---------------------------------------------------------------

    def prepare(self, request):
        deps = BatchRequest()
        for key in self._data_keys():
            if key not in request:
                raise BatchRequestError(
                    f"{self.describe()} needs {key} to train, but the request does not contain it; "
                    f"request {key} with the ROI the model reads (requested: {sorted(request.keys())})"
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
        timing = Timing(self, "process")
        timing.start()
        start = time.perf_counter()
        self.train_step(batch, request)
        timing.stop()
        batch.profiling_stats.add(timing)
        logger.info(
            "Train process: iteration=%d loss=%.6f time=%.3f",
            batch.iteration,
            batch.loss,
            time.perf_counter() - start,
        )

    # -- one iteration -------------------------------------------------------------

    def _value(self, key, batch):
        if isinstance(key, ArrayKey):
            return batch[key].data
        if isinstance(key, np.ndarray):
            return key
        if isinstance(key, str):
            return getattr(batch, key)
        raise PipelineConfigError(f"{self.describe()}: cannot give {key!r} to the network")

    def _tensor(self, value):
        torch = require_torch("Train")
        return torch.as_tensor(np.ascontiguousarray(np.asarray(value)), device=self.device)

    def train_step(self, batch, request):
        torch = require_torch("Train")
        consumer = self._consumer
        args, kwargs = _split({name: self._tensor(self._value(key, batch)) for name, key in self.inputs.items()})

        self.optimizer.zero_grad()
        consumer.layers.clear()
        model_outputs = self.model(*args, **kwargs)
        if isinstance(model_outputs, tuple):
            outputs = dict(enumerate(model_outputs))
        elif isinstance(model_outputs, torch.Tensor):
            outputs = {0: model_outputs}
        else:
            raise BatchFilterError(
                f"{self.describe()}: the model returned a {type(model_outputs).__name__}; Train supports "
                f"a torch.Tensor or a tuple of them from forward()"
            )
        outputs.update(consumer.layers)

        # every check happens before the optimizer steps
        for role, mapping in (("output", self.outputs), ("gradient", self.gradients)):
            for name, key in mapping.items():
                if name not in outputs:
                    raise BatchRequestError(
                        f"{self.describe()}: {role} {name!r} ({key}) is not an output of "
                        f"{type(self.model).__name__}, which returned {len(model_outputs) if isinstance(model_outputs, tuple) else 1} tensor(s)"
                    )
        rois = {
            key: self._output_roi(key, outputs[name], batch, request)
            for mapping in (self.outputs, self.gradients)
            for name, key in mapping.items()
            if key in request or (key in self.array_specs and self.array_specs[key].roi is not None)
        }

        by_key = {key: outputs[name] for name, key in self.outputs.items()}
        loss_values = {
            name: by_key[key] if key in by_key else self._tensor(self._value(key, batch))
            for name, key in self.loss_inputs.items()
        }
        loss_args, loss_kwargs = _split(loss_values)
        for name, key in self.gradients.items():
            if key in request:
                outputs[name].retain_grad()
        loss = self.loss(*loss_args, **loss_kwargs)
        loss.backward()
        self.optimizer.step()

        for mapping, gradient in ((self.outputs, False), (self.gradients, True)):
            for name, key in mapping.items():
                if key not in request:
                    continue
                tensor = outputs[name].grad if gradient else outputs[name]
                data = tensor.detach().cpu().numpy()
                spec = self.spec[key].copy()
                spec.roi = rois[key]
                spec.dtype = data.dtype
                batch.arrays[key] = Array(data, spec)

        batch.loss = float(loss.detach().cpu())
        consumer.iteration += 1
        batch.iteration = consumer.iteration

        if batch.iteration % self.save_every == 0:
            name = checkpoint_name(self.checkpoint_basename, batch.iteration)
            logger.info("Creating checkpoint %s", name)
            os.makedirs(os.path.dirname(os.path.abspath(name)), exist_ok=True)
            torch.save(
                {"model_state_dict": self.model.state_dict(), "optimizer_state_dict": self.optimizer.state_dict()},
                name,
            )
        if consumer.writer is not None and batch.iteration % self.log_every == 0:
            consumer.writer.add_scalar("loss", batch.loss, batch.iteration)

    def _output_roi(self, key, tensor, batch, request):
        inputs = [batch[k].spec.roi for k in self.inputs.values() if isinstance(k, ArrayKey)]
        return output_roi(self, key, tensor.shape, self.spec[key].voxel_size, inputs, request, self.array_specs)


def _split(named):
    """Positional (int keys, in order) and keyword (str keys) arguments."""
    positions = sorted(k for k in named if isinstance(k, int))
    if positions != list(range(len(positions))):
        raise PipelineConfigError(f"positional arguments must be numbered 0, 1, ...; got {positions}")
    return [named[i] for i in positions], {k: v for k, v in named.items() if isinstance(k, str)}
