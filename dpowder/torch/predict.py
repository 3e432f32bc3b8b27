"""``torch.Predict``: run a torch model on the arrays of a batch."""

import os
import sys
import threading
import uuid

from ..checkpoints import check_torch, load_torch
from ..engine import worker_cache
from ..errors import PipelineConfigError
from ..nodes.generic_predict import GenericPredict
from ._common import arguments
from .layout import LayoutChooser, channels_last_copy


def _choose_device(torch, device):
    """``device``, with "cuda" falling back to the CPU; on a worker of a
    multi-GPU machine, the GPU given by the worker's place (one per worker)."""
    if not str(device).startswith("cuda"):
        return torch.device(device)
    if not torch.cuda.is_available():
        return torch.device("cpu")
    if device == "cuda" and torch.cuda.device_count() > 1:
        try:
            from distributed import get_worker

            name = get_worker().name
            index = int(name) if str(name).isdigit() else abs(hash(name))
            return torch.device(f"cuda:{index % torch.cuda.device_count()}")
        except (ImportError, ValueError):
            pass
    return torch.device(device)


class Predict(GenericPredict):
    """Torch implementation of ``gunpowder.nodes.Predict``.

    The model is prepared (checkpoint loaded, moved to the device, put in
    eval mode) once per process and reused for every block that process
    runs; in a ``distributed`` worker torch uses one thread (set
    ``DPOWDER_TORCH_THREADS`` to change that) so that workers don't
    oversubscribe the cores. Forward passes run under
    ``torch.inference_mode``. On the CPU, a channels-last copy of the model
    runs them instead where it gives the same bits faster
    (``dpowder.torch.layout``; ``dpowder.torch.channels_last: false`` turns
    that off).

    Args:

        model (subclass of torch.nn.Module):

            The model to use for prediction.

        inputs (dict, string or int -> ArrayKey):

            Dictionary from the position (for args) and names (for kwargs) of
            input tensors (argument names of the forward method) in the model
            to array keys.

        outputs (dict, string or int -> ArrayKey):

            Dictionary from the names of tensors in the network to array
            keys. If the key is a string, the tensor will be retrieved by
            checking the model for a submodule (or attribute) with the key as
            its name. If the key is an integer, it is interpreted as a tuple
            index of the outputs of the network. New arrays will be generated
            by this node for each entry (if requested downstream).

        array_specs (dict, ArrayKey -> ArraySpec, optional):

            Used to set the specs of generated arrays (outputs). This is
            useful to set the voxel_size, for example, if they differ from
            the voxel size of the input arrays. Only fields that are not None
            in the given ArraySpec will be used.

        checkpoint: (string, optional):

            An optional path to the saved parameters for your torch module.
            These will be loaded and used for prediction if provided.

        device (string, optional):

            Which device to use for prediction (``"cpu"`` or ``"cuda"``).
            Default is ``"cuda"``, which falls back to CPU if CUDA is not
            available. On a cluster of GPU workers each worker uses its own
            GPU.

        spawn_subprocess (bool, optional):

            Whether to run predict in a separate process. Blocks already run
            in dask worker processes, so this only isolates the model from
            the calling process when the pipeline runs in-process.

        trust_checkpoint (bool, optional):

            Load ``checkpoint`` as a full pickle, which runs code stored in
            the file. By default only tensors, numbers and containers of them
            load (``torch.load(weights_only=True)``: state dicts and
            gunpowder's checkpoints); any other checkpoint raises
            ``UntrustedCheckpointError`` when the pipeline is built.
    """

    framework = "torch"

    def __init__(
        self,
        model,
        inputs,
        outputs,
        array_specs=None,
        checkpoint=None,
        device="cuda",
        spawn_subprocess=False,
        trust_checkpoint=False,
    ):
        torch = self._require()
        super().__init__(inputs, outputs, array_specs, checkpoint, spawn_subprocess)
        if not isinstance(model, torch.nn.Module):
            raise PipelineConfigError(f"{self._label()}: model must be a torch.nn.Module, got {type(model).__name__}")
        self.model = model
        self.device = device
        self.trust_checkpoint = trust_checkpoint
        # names this node's cached model in every process, so that teardown can drop it
        self._cache_tag = f"torch.Predict-{uuid.uuid4().hex}"

    def setup(self):
        super().setup()
        if self.checkpoint is not None:
            # a checkpoint that is refused fails the build, not every block
            check_torch(self._require(), self.checkpoint, self.trust_checkpoint)

    def dp_worker_resources(self):
        """One GPU per worker (dask worker resource ``GPU``) when predicting
        on CUDA."""
        return {"GPU": 1} if str(self.device).startswith("cuda") else {}

    def _prepared_model(self):
        """The model, ready on its device: once per process."""

        def prepare():
            torch = self._require()
            # a process that never imported distributed is not one of its
            # workers; importing it only to ask costs about a second
            if "distributed" in sys.modules and worker_cache.in_worker():
                torch.set_num_threads(int(os.environ.get("DPOWDER_TORCH_THREADS", "1")))
            device = _choose_device(torch, self.device)
            model = self.model
            if self.checkpoint is not None:
                state = load_torch(torch, self.checkpoint, device, self.trust_checkpoint)
                if isinstance(state, dict) and "model_state_dict" in state:
                    state = state["model_state_dict"]
                model.load_state_dict(state)
            model = model.to(device)
            model.eval()
            # blocks may run in several threads of this process at once: each
            # forward pass's hooked outputs go to its own thread's dict
            hooks = threading.local()
            for name in self.outputs:
                if isinstance(name, str):
                    try:
                        module = model.get_submodule(name)
                    except AttributeError:
                        continue
                    module.register_forward_hook(
                        lambda m, i, o, name=name: hooks.__dict__.setdefault("outputs", {}).__setitem__(name, o)
                    )
            copied = channels_last_copy(torch, model, device)
            chooser = None if copied is None else LayoutChooser(torch, model, copied)
            return model, device, hooks, chooser

        return self._once_per_process(prepare, str(self.device), self._cache_tag)

    def teardown(self):
        """Drop the prepared model from this process and from the workers of
        the build's client and of dpowder's own cluster (they outlive the
        build, and would keep every build's model)."""
        worker_cache.drop_everywhere(self._cache_tag, self)
        super().teardown()

    def predict(self, batch, request):
        torch = self._require()
        model, device, hooks, chooser = self._prepared_model()
        inputs = {name: self._value(key, batch) for name, key in self.inputs.items()}
        args, kwargs = arguments(self, torch, inputs, device)

        def forward(model):
            hooked = hooks.__dict__["outputs"] = {}
            with torch.inference_mode():
                result = model(*args, **kwargs)
            results = dict(enumerate(result if isinstance(result, tuple) else (result,)))
            results.update(hooked)
            for name in self.outputs:
                if isinstance(name, str) and name not in results and hasattr(model, name):
                    results[name] = getattr(model, name)  # an attribute the forward pass set
            return results

        if chooser is None:
            results = forward(model)
        else:
            shape = tuple((name, tuple(value.shape), value.dtype) for name, value in inputs_of(args, kwargs))
            results = chooser.run(shape, forward)
        return {
            # a channels-last model's outputs are channels-last too: handed on in C order
            name: results[name].detach().cpu().contiguous().numpy()
            for name, key in self.outputs.items()
            if key in request and name in results
        }


def inputs_of(args, kwargs):
    """The model's arguments as (name, tensor) pairs, positions as strings."""
    return [(str(i), value) for i, value in enumerate(args)] + list(kwargs.items())
