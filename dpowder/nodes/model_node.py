"""``ModelNode``: the base of the Train and Predict nodes of every
framework (the framework helpers it uses are in ``framework_common``)."""

import numpy as np

from ..array import Array
from ..array_spec import ArraySpec
from ..batch_request import BatchRequest
from ..errors import BatchRequestError, PipelineConfigError, PipelineSetupError
from ..framework_common import output_roi, require_framework
from ..keys import ArrayKey
from .batch_filter import BatchFilter

__all__ = ["ModelNode"]


class ModelNode(BatchFilter):
    """Base of the Train and Predict nodes: a model fed with arrays of the
    batch (``inputs``) whose results become new arrays (``outputs``).

    Subclasses set ``framework`` (a key of ``_FRAMEWORKS``) and may extend
    ``_read_keys`` (what the batch feeds besides the inputs) and
    ``_result_mappings`` (what the model returns besides the outputs).

    Args:

        inputs (``dict``, ``string`` or ``int`` -> :class:`ArrayKey`): The
            model's inputs; a value may also be an ``np.ndarray`` (given as
            it is) or a string (the batch attribute of that name).

        outputs (``dict``, ``string`` or ``int`` -> :class:`ArrayKey`): The
            model's results to return as arrays (where requested).

        array_specs (``dict``, :class:`ArrayKey` -> :class:`ArraySpec`):
            Specs of the generated arrays; only fields that are not ``None``
            are used.
    """

    framework: str | None = None

    def __init__(self, inputs, outputs, array_specs, **mappings):
        for name, value in dict(inputs=inputs, outputs=outputs, **mappings).items():
            if not isinstance(value, dict):
                raise PipelineConfigError(
                    f"{self._label()}: {name} must be a dict of name or position -> ArrayKey, "
                    f"got {type(value).__name__}"
                )
        self.inputs = dict(inputs)
        self.outputs = dict(outputs)
        self.array_specs = {} if array_specs is None else dict(array_specs)

    @classmethod
    def _label(cls):
        return f"{cls.framework}.{cls.__name__}"

    @classmethod
    def _require(cls):
        return require_framework(cls.framework, cls.__name__)

    def _result_mappings(self):
        """``[(role, {name: key})]`` of what the model's results give."""
        return [("output", self.outputs)]

    def _produced(self):
        return {key for _, mapping in self._result_mappings() for key in mapping.values()}

    def _read_keys(self):
        """``[(role, name, key)]`` of the arrays read from the batch: the
        inputs that are array keys and not results of the model."""
        produced = self._produced()
        return [
            ("input", name, key)
            for name, key in self.inputs.items()
            if isinstance(key, ArrayKey) and key not in produced
        ]

    # -- setup and prepare -----------------------------------------------------

    def _declare_outputs(self, keep_roi):
        """Check that upstream provides what the model reads, and provide
        every result: voxel size from ``array_specs``, else the inputs'
        common one; not interpolatable unless said; the ``array_specs`` ROI
        kept only with ``keep_roi`` (else results lie where requested)."""
        for role, name, key in self._read_keys():
            if key not in self.spec:
                raise PipelineSetupError(
                    f"{self.describe()}: {role} {name!r} is {key}, which no node upstream provides and which "
                    f"is not an output of the model; upstream provides {sorted(self.spec.keys())}"
                )
        voxel_sizes = {
            self.spec[key].voxel_size
            for key in self.inputs.values()
            if isinstance(key, ArrayKey) and key in self.spec and not self.spec[key].nonspatial
        }
        common = voxel_sizes.pop() if len(voxel_sizes) == 1 else None
        for _, mapping in self._result_mappings():
            for key in mapping.values():
                spec = self.array_specs[key].copy() if key in self.array_specs else ArraySpec()
                if spec.voxel_size is None and not spec.nonspatial:
                    if common is None:
                        raise PipelineSetupError(
                            f"{self.describe()}: the inputs have no common voxel size and array_specs gives "
                            f"none for {key}; give array_specs[{key}] = ArraySpec(voxel_size=...)"
                        )
                    spec.voxel_size = common
                if spec.interpolatable is None:
                    spec.interpolatable = False
                if not keep_roi:
                    spec.roi = None
                self.provides(key, spec)

    def prepare(self, request):
        deps = BatchRequest()
        for _, _, key in self._read_keys():
            if key not in request:
                raise BatchRequestError(
                    f"{self.describe()} needs {key}, but the request does not contain it; request {key} "
                    f"with the ROI the model reads (requested: {sorted(request.keys())})"
                )
            deps[key] = request[key].copy()
        return deps

    # -- process -----------------------------------------------------------------

    def _value(self, key, batch):
        """What input ``key`` gives the model (gunpowder's rule)."""
        if isinstance(key, ArrayKey):
            return batch[key].data
        if isinstance(key, np.ndarray):
            return key
        if isinstance(key, str):
            return getattr(batch, key)
        raise PipelineConfigError(f"{self.describe()}: cannot give {key!r} to the model")

    def _result(self, results, role, name, key, source):
        """``results[name]``, or a ``BatchRequestError`` naming what
        ``source`` gave instead."""
        if name not in results:
            raise BatchRequestError(
                f"{self.describe()}: {role} {name!r} ({key}) is not an output of {source}, which gives "
                f"{sorted(map(str, results))}"
            )
        return results[name]

    def _output_rois(self, shapes, batch, request):
        """``{key: roi}`` for the results of ``shapes`` (key -> data shape)
        that are requested or placed by ``array_specs``; checking these
        shapes before the results are used (e.g. before an optimizer step)."""
        input_rois = [batch[k].spec.roi for k in self.inputs.values() if isinstance(k, ArrayKey)]
        return {
            key: output_roi(self, key, shape, self.spec[key].voxel_size, input_rois, request, self.array_specs)
            for key, shape in shapes.items()
            if key in request or (key in self.array_specs and self.array_specs[key].roi is not None)
        }

    def _output_array(self, key, data, roi):
        """``data`` as the array of result ``key`` at ``roi``, in the dtype
        ``array_specs`` asks for, if any."""
        data = np.asarray(data)
        spec = self.spec[key].copy()
        if spec.dtype is not None and np.dtype(spec.dtype) != data.dtype:
            data = data.astype(spec.dtype)
        spec.roi = roi
        spec.dtype = data.dtype
        return Array(data, spec)
