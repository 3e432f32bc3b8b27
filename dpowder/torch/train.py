"""``torch.Train``: one training iteration per batch, in the calling process,
fed by a stream of batches made ahead on the dask cluster."""

import logging

from ..checkpoints import load_torch
from ..errors import BatchFilterError, PipelineConfigError, PipelineSetupError
from ..keys import ArrayKey
from ..nodes.generic_train import GenericTrain, TrainState
from ._common import arguments, resolve_device

logger = logging.getLogger(__name__)


class _TorchState(TrainState):
    def __init__(self):
        super().__init__()
        self.hooks = []
        self.layers = {}


class Train(GenericTrain):
    """Torch implementation of ``gunpowder.nodes.GenericTrain``.

    Training runs in the calling process, fed by batches made ahead on the
    dask cluster, seeded per iteration (see ``GenericTrain``). The user's
    loop stays gunpowder's: ``with build(p): for i in range(n):
    p.request_batch(r)``. Checkpoints hold the model's and the optimizer's
    state dicts.

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

        trust_checkpoint (``bool``, optional): Resume from a checkpoint that
            is a full pickle, which runs code stored in the file. By default
            only tensors, numbers and containers of them load
            (``torch.load(weights_only=True)``, enough for the checkpoints
            this node and gunpowder write); any other checkpoint raises
            ``UntrustedCheckpointError``.
    """

    framework = "torch"
    state_type = _TorchState

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
        trust_checkpoint=False,
    ):
        torch = self._require()
        super().__init__(
            inputs, outputs, gradients, array_specs, checkpoint_basename, save_every, None, log_dir, log_every,
            spawn_subprocess, loss_inputs=loss_inputs,
        )  # fmt: skip
        if not isinstance(model, torch.nn.Module):
            raise PipelineConfigError(f"{self._label()}: model must be a torch.nn.Module, got {type(model).__name__}")
        if not model.training:
            logger.warning("Model is in evaluation mode during training. Consider using model.train()")
        self.model = model
        self.loss = loss
        self.optimizer = optimizer
        self.loss_inputs = dict(loss_inputs)
        self.device = resolve_device(torch, device)
        self.trust_checkpoint = trust_checkpoint

    def _read_keys(self):
        produced = self._produced()
        loss_inputs = [
            ("loss input", name, key)
            for name, key in self.loss_inputs.items()
            if isinstance(key, ArrayKey) and key not in produced
        ]
        return super()._read_keys() + loss_inputs

    def start(self):
        torch = self._require()
        submodules = dict(self.model.named_modules())
        for role, mapping in self._result_mappings():
            for name in mapping:
                if not isinstance(name, (str, int)):
                    raise PipelineSetupError(f"{self.describe()}: {role} names must be strings or ints, got {name!r}")
                if isinstance(name, str) and name not in submodules:
                    raise PipelineSetupError(
                        f"{self.describe()}: {role} {name!r} ({mapping[name]}) names no submodule of "
                        f"{type(self.model).__name__}; its submodules are {sorted(n for n in submodules if n)}"
                    )
        self.model.to(self.device)
        if isinstance(self.loss, torch.nn.Module):
            self.loss.to(self.device)
        self.stop()
        state = self._consumer
        for _, mapping in self._result_mappings():
            for name in mapping:
                if isinstance(name, str):
                    state.hooks.append(submodules[name].register_forward_hook(self._hook(name)))
        logger.info("Using device %s", self.device)

    def _hook(self, name):
        layers = self._consumer.layers

        def save_layer(module, args, output):
            layers[name] = output

        return save_layer

    def stop(self):
        state = self._consumer
        for hook in state.hooks:
            hook.remove()
        state.hooks = []

    def load_checkpoint(self, path):
        torch = self._require()
        state = load_torch(torch, path, self.device, self.trust_checkpoint)
        self.model.load_state_dict(state["model_state_dict"])
        self.optimizer.load_state_dict(state["optimizer_state_dict"])

    def save_checkpoint(self, path):
        torch = self._require()
        torch.save(
            {"model_state_dict": self.model.state_dict(), "optimizer_state_dict": self.optimizer.state_dict()}, path
        )

    def train_step(self, batch, request):
        torch = self._require()
        state = self._consumer
        inputs = {name: self._value(key, batch) for name, key in self.inputs.items()}
        args, kwargs = arguments(self, torch, inputs, self.device)

        self.optimizer.zero_grad()
        state.layers.clear()
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
        outputs.update(state.layers)

        # every check happens before the optimizer steps
        source = type(self.model).__name__
        tensors = {
            key: self._result(outputs, role, name, key, source)
            for role, mapping in self._result_mappings()
            for name, key in mapping.items()
        }
        rois = self._output_rois({key: tensor.shape for key, tensor in tensors.items()}, batch, request)

        loss_values = {
            name: tensors[key] if key in self.outputs.values() else self._value(key, batch)
            for name, key in self.loss_inputs.items()
        }
        loss_args, loss_kwargs = arguments(self, torch, loss_values, self.device)
        for key in self.gradients.values():
            if key in request:
                tensors[key].retain_grad()
        loss = self.loss(*loss_args, **loss_kwargs)
        loss.backward()
        self.optimizer.step()

        for mapping, gradient in ((self.outputs, False), (self.gradients, True)):
            for key in mapping.values():
                if key in request:
                    tensor = tensors[key].grad if gradient else tensors[key]
                    batch.arrays[key] = self._output_array(key, tensor.detach().cpu().numpy(), rois[key])
        return float(loss.detach().cpu())
