"""``torch.Predict``: run a torch model on the arrays of a batch."""

import os

import numpy as np

from ..array import Array
from ..array_spec import ArraySpec
from ..batch_request import BatchRequest
from ..errors import BatchRequestError, PipelineConfigError, PipelineSetupError
from ..keys import ArrayKey
from ..nodes.batch_filter import BatchFilter
from ..engine import worker_cache
from ._common import require_torch


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


class Predict(BatchFilter):
    """Torch implementation of ``gunpowder.nodes.Predict``.

    The model is prepared (checkpoint loaded, moved to the device, put in
    eval mode) once per process and reused for every block that process
    runs; in a ``distributed`` worker torch uses one thread (set
    ``DPOWDER_TORCH_THREADS`` to change that) so that workers don't
    oversubscribe the cores. Forward passes run under
    ``torch.inference_mode``.

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
    """

    def __init__(self, model, inputs, outputs, array_specs=None, checkpoint=None, device="cuda", spawn_subprocess=False):
        torch = require_torch("Predict")
        if not isinstance(model, torch.nn.Module):
            raise PipelineConfigError(f"Predict: model must be a torch.nn.Module, got {type(model).__name__}")
        for name, mapping in (("inputs", inputs), ("outputs", outputs)):
            if not isinstance(mapping, dict) or not mapping:
                raise PipelineConfigError(f"Predict: {name} must be a non-empty dict of name or position -> ArrayKey")
        self.model = model
        self.inputs = dict(inputs)
        self.outputs = dict(outputs)
        self.array_specs = dict(array_specs or {})
        self.checkpoint = checkpoint
        self.device = device
        self.spawn_subprocess = spawn_subprocess

    def setup(self):
        common_voxel_size = None
        for key in self.inputs.values():
            if not isinstance(key, ArrayKey):
                continue
            if key not in self.spec:
                raise PipelineSetupError(
                    f"{self.describe()}: input {key} is not provided upstream (upstream provides {sorted(self.spec.keys())})"
                )
            if self.spec[key].nonspatial:
                continue
            voxel_size = self.spec[key].voxel_size
            if common_voxel_size is None:
                common_voxel_size = voxel_size
            elif voxel_size != common_voxel_size:
                common_voxel_size = None
                break
        for key in self.outputs.values():
            spec = self.array_specs[key].copy() if key in self.array_specs else ArraySpec()
            if spec.voxel_size is None and not spec.nonspatial:
                if common_voxel_size is None:
                    raise PipelineSetupError(
                        f"{self.describe()}: the inputs have no common voxel size and array_specs gives none for "
                        f"output {key}; give array_specs[{key}] = ArraySpec(voxel_size=...)"
                    )
                spec.voxel_size = common_voxel_size
            if spec.interpolatable is None:
                spec.interpolatable = False
            self.provides(key, spec)
        if self.checkpoint is not None and not os.path.exists(self.checkpoint):
            raise PipelineSetupError(f"{self.describe()}: checkpoint {self.checkpoint!r} does not exist")

    def prepare(self, request):
        deps = BatchRequest()
        for key in self.inputs.values():
            if key not in request:
                raise BatchRequestError(
                    f"{self.describe()}: input {key} must be requested together with the outputs "
                    f"{sorted(self.outputs.values())} (request it with the network's input shape)"
                )
            deps[key] = request[key].copy()
        return deps

    def dp_worker_resources(self):
        """One GPU per worker (dask worker resource ``GPU``) when predicting
        on CUDA."""
        return {"GPU": 1} if str(self.device).startswith("cuda") else {}

    def _cache_key(self):
        d = self.__dict__
        return ("torch.Predict", d.get("_dp_build"), d.get("_dp_uid", id(self)), self.checkpoint, str(self.device))

    def _prepared_model(self):
        """The model, ready on its device: once per process."""

        def prepare():
            torch = require_torch("Predict")
            if worker_cache.in_worker():
                torch.set_num_threads(int(os.environ.get("DPOWDER_TORCH_THREADS", "1")))
            device = _choose_device(torch, self.device)
            model = self.model
            if self.checkpoint is not None:
                state = torch.load(self.checkpoint, map_location=device, weights_only=False)
                if isinstance(state, dict) and "model_state_dict" in state:
                    state = state["model_state_dict"]
                model.load_state_dict(state)
            model = model.to(device)
            model.eval()
            hooks = {}
            for name in self.outputs:
                if isinstance(name, str):
                    try:
                        module = model.get_submodule(name)
                    except AttributeError:
                        continue
                    module.register_forward_hook(lambda m, i, o, name=name: hooks.__setitem__(name, o))
            return model, device, hooks

        return worker_cache.get_or_create(self._cache_key(), prepare)

    def process(self, batch, request):
        torch = require_torch("Predict")
        model, device, hooks = self._prepared_model()
        args, kwargs = [], {}
        for name, key in sorted(self.inputs.items(), key=lambda kv: (isinstance(kv[0], str), str(kv[0]))):
            data = batch[key].data if isinstance(key, ArrayKey) else key
            tensor = torch.as_tensor(np.ascontiguousarray(data), device=device) if isinstance(key, ArrayKey) else data
            if isinstance(name, int):
                args.append(tensor)
            else:
                kwargs[name] = tensor
        with torch.inference_mode():
            result = model(*args, **kwargs)
            results = result if isinstance(result, tuple) else (result,)
            for name, key in self.outputs.items():
                if key not in request:
                    continue
                if isinstance(name, int):
                    tensor = results[name]
                elif name in hooks:
                    tensor = hooks[name]
                else:
                    tensor = getattr(model, name)
                batch[key] = self._to_array(key, tensor.detach().cpu().numpy(), request)
        return batch

    def _to_array(self, key, data, request):
        spec = self.spec[key].copy()
        spec.roi = request[key].roi
        if spec.roi is not None and spec.voxel_size is not None:
            expected = tuple(spec.roi.shape / spec.voxel_size)
            if data.ndim < len(expected) or tuple(data.shape[-len(expected):]) != expected:
                raise BatchRequestError(
                    f"{self.describe()}: the model's output for {key} has shape {data.shape}, but {key} was "
                    f"requested with ROI {spec.roi} and voxel size {spec.voxel_size}, i.e. spatial shape "
                    f"{expected}; request {key} with the network's output shape"
                )
        if spec.dtype is not None and np.dtype(spec.dtype) != data.dtype:
            data = data.astype(spec.dtype)
        spec.dtype = data.dtype
        return Array(data, spec)
