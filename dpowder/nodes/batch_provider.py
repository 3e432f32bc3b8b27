"""``BatchProvider``: the base of every node."""

import os
import random
import sys

import numpy as np

from ..engine import record
from ..engine.consistency import check_request
from ..errors import BatchRequestError, PipelineSetupError
from ..provider_spec import ProviderSpec

__all__ = ["BatchProvider", "BatchRequestError"]

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _creation_site():
    """``file:line`` of the first frame outside dpowder: where the user made
    the node."""
    frame = sys._getframe(2)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not filename.startswith(_PACKAGE_DIR) or "/tests/" in filename:
            return f"{filename}:{frame.f_lineno}"
        frame = frame.f_back
    return "<unknown>"


class BatchProvider:
    """Superclass for all nodes in a pipeline.

    A ``BatchProvider`` provides batches of arrays and graphs. What it offers
    is its ``spec`` (a ``ProviderSpec``), announced in ``setup`` with
    ``provides``. To create a source, subclass this class and implement
    ``setup`` and ``provide``; for a node with exactly one upstream provider,
    subclass ``BatchFilter``.

    Nodes say *what* (``setup``, ``prepare``, ``process``, ``provide``); the
    engine decides where and when they run. Randomness comes from ``self.rng``,
    a ``numpy.random.Generator`` seeded by the request's ``random_seed`` and
    this node's place in the pipeline.
    """

    def __new__(cls, *args, **kwargs):
        self = super().__new__(cls)
        self._dp_created_at = _creation_site()
        return self

    # -- what subclasses implement ------------------------------------------

    def setup(self):
        """Called when the pipeline is built, after every upstream provider is
        set up. Call ``provides()`` here to announce what this node offers."""
        raise NotImplementedError(f"{type(self).__name__} does not implement setup()")

    def teardown(self):
        """Called when the pipeline is torn down; free resources here."""

    def provide(self, request):
        """Return the ``Batch`` for ``request`` (a ``BatchRequest``)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement provide()")

    # -- planning hooks (beyond gunpowder) ------------------------------------

    def plan_upstream(self, request):
        """For a node with several upstream requests: return the list of
        ``(upstream_index, BatchRequest)`` it needs for ``request``, decided
        before any data is seen; ``combine`` then makes the batch. ``None``
        (the default) means the node is not planned ahead and runs with its
        upstream inside one task."""
        return None

    def combine(self, batches, request):
        """Make the batch for ``request`` from the upstream ``batches`` that
        ``plan_upstream`` asked for, in the same order."""
        raise NotImplementedError(f"{type(self).__name__} plans upstream requests but does not implement combine()")

    def plans_upstream(self):
        """Whether this node plans its upstream requests ahead (it
        overrides ``plan_upstream``); the engine asks this, not the class."""
        return type(self).plan_upstream is not BatchProvider.plan_upstream

    def has_data_dependent_control_flow(self):
        """Whether what this node asks upstream depends on the data it gets
        back (e.g. ``Reject`` asks again until a batch passes). Such a node
        is lowered to one task that runs its upstream sub-plan inside it."""
        if not record.upstream(self):
            return False
        return not self.plans_upstream()

    def runs_on_driver(self):
        """Whether this node runs in the calling process (the consumer) and
        has its upstream scheduled through the engine's services (blockwise
        maps, streams) instead of being lowered into a task. ``Scan``,
        ``Train`` and ``PreCache`` do; nodes downstream of one run in the
        calling process too."""
        return False

    # -- spec -----------------------------------------------------------------

    @property
    def spec(self):
        """The ``ProviderSpec`` of this node; ``None`` before the pipeline is
        built."""
        return self.__dict__.get("_spec")

    def provides(self, key, spec):
        """Introduce a new output provided by this node. Call in ``setup()``.

        Args:

            key (ArrayKey or GraphKey): The key provided.

            spec (ArraySpec or GraphSpec): The spec of what is provided.
        """
        if self.spec is None:
            self._spec = ProviderSpec()
        if key in self._spec:
            raise PipelineSetupError(
                f"{self.describe()} provides {key}, but {key} is already provided (upstream spec: {self._spec[key]})"
            )
        self._spec[key] = spec.copy()
        self.__dict__.setdefault("provided_items", []).append(key)

    @property
    def provided_items(self):
        return self.__dict__.setdefault("provided_items", [])

    # -- requesting -----------------------------------------------------------

    def request_batch(self, request):
        """Request a batch from this provider.

        Args:

            request (BatchRequest): A request containing (possibly partial)
                ``ArraySpec`` and ``GraphSpec``.
        """
        from ..engine.errors_wrap import serve
        from ..engine.execute import request_batch

        return serve(self, request, request_batch)

    def get_upstream_providers(self):
        """This node's upstream providers, in order."""
        return list(record.upstream(self))

    def add_upstream_provider(self, provider):
        """Link ``provider`` upstream of this node and return it (gunpowder's
        way of linking nodes by hand; pipelines made with ``+`` are linked
        when they are built)."""
        record.add_upstream(self, provider)
        return provider

    def remove_upstream_providers(self):
        """Unlink every upstream provider of this node."""
        record.link(self, [], by_hand=True)

    def remove_provided(self, request):
        """Remove from ``request`` (in place) the keys this node provides."""
        for key in self.provided_items:
            if key in request:
                del request[key]

    def check_batch_consistency(self, batch, request):
        """Raise ``BatchRequestError`` where ``batch`` does not meet
        ``request`` as gunpowder checks it after ``provide``: every requested
        item delivered, arrays with the requested ROI and dtype, the voxel
        size this node provides and data of the matching shape, graphs
        covering the requested ROI, their nodes inside it (or dangling on an
        edge from inside)."""
        from ..engine.consistency import check_batch
        from ..graph import contains_points

        check_batch(self, batch, request)
        for key, request_spec in request.array_specs.items():
            if request_spec.placeholder or key not in batch:
                continue
            array = batch[key]
            if request_spec.dtype is not None and np.dtype(array.data.dtype) != np.dtype(request_spec.dtype):
                raise BatchRequestError(
                    f"{self.describe()} delivered {key} with dtype {np.dtype(array.data.dtype)}, "
                    f"but dtype {np.dtype(request_spec.dtype)} was requested",
                    node=self,
                    key=key,
                )
            provided = self.spec[key] if self.spec is not None and key in self.spec else None
            if provided is None or provided.nonspatial or array.spec.nonspatial:
                continue
            if array.spec.voxel_size != provided.voxel_size:
                raise BatchRequestError(
                    f"{self.describe()} announced voxel size {provided.voxel_size} for {key}, but "
                    f"delivered {array.spec.voxel_size}",
                    node=self,
                    key=key,
                    provided=provided,
                )
            roi = request_spec.roi
            if roi is not None and provided.voxel_size is not None:
                shape = tuple(array.data.shape[-roi.dims :])
                expected = tuple(roi.shape / provided.voxel_size)
                if shape != expected:
                    raise BatchRequestError(
                        f"{self.describe()} delivered {key} with spatial shape {shape} voxels for "
                        f"ROI {roi} at voxel size {provided.voxel_size}, which needs {expected}",
                        node=self,
                        key=key,
                        roi=roi,
                    )
        for key, request_spec in request.graph_specs.items():
            if request_spec.placeholder or key not in batch:
                continue
            graph = batch[key]
            roi = graph.spec.roi
            if request_spec.roi is not None and (roi is None or not roi.contains(request_spec.roi)):
                raise BatchRequestError(
                    f"{self.describe()} delivered graph {key} with ROI {roi}, which does not "
                    f"cover the requested ROI {request_spec.roi}",
                    node=self,
                    key=key,
                    roi=request_spec.roi,
                    provided=roi,
                )
            if roi is None:
                continue
            nodes = list(graph.nodes)
            if not nodes:
                continue
            inside = contains_points(roi, np.asarray([n.location for n in nodes], dtype=np.float64))
            inside_ids = {n.id for n, i in zip(nodes, inside) if i}
            for node, is_inside in zip(nodes, inside):
                if is_inside:
                    continue
                if not all(neighbour.id in inside_ids for neighbour in graph.neighbors(node)):
                    raise BatchRequestError(
                        f"{self.describe()} delivered graph {key} with ROI {roi} holding node "
                        f"{node.id} at {node.location}, outside it and not dangling from a node inside",
                        node=self,
                        key=key,
                        roi=roi,
                    )

    def remove_unneeded(self, batch, request):
        """Remove from ``batch`` (in place) every item not in ``request``."""
        for key in [k for k in batch.keys() if k not in request]:
            del batch[key]

    def enable_placeholders(self):
        """Let this node's ``provide`` see the placeholders of its requests
        (they are removed by default). Call in ``setup()``."""
        self.__dict__["_remove_placeholders"] = False

    @property
    def remove_placeholders(self):
        """Whether placeholders are removed from the requests this node's
        ``provide`` gets (``True`` unless ``enable_placeholders()``)."""
        return self.__dict__.get("_remove_placeholders", True)

    @remove_placeholders.setter
    def remove_placeholders(self, value):
        self.__dict__["_remove_placeholders"] = bool(value)

    def internal_teardown(self):
        """Forget the spec and provided items, then ``teardown()``."""
        self.__dict__["_spec"] = None
        self.provided_items.clear()
        self.teardown()

    # -- randomness -----------------------------------------------------------

    def set_seeds(self, request):
        """Seed the global ``random`` and ``np.random`` with
        ``request.random_seed``, as gunpowder does before each node handles
        a request (for nodes that draw from them)."""
        seed = request.random_seed
        random.seed(seed)
        np.random.seed(seed & 0xFFFFFFFF)  # noqa: NPY002 -- the global generator gunpowder nodes draw from

    @property
    def rng(self):
        """A ``numpy.random.Generator`` for this node and the current request:
        the same request seed gives the same draws wherever the node runs."""
        return record.rng(self)

    # -- composition ----------------------------------------------------------

    def __add__(self, other):
        from ..pipeline import Pipeline

        return Pipeline(self) + other

    def __radd__(self, other):
        from ..pipeline import Pipeline

        if not isinstance(other, tuple):
            return NotImplemented
        return Pipeline(self).__radd__(other)

    # -- description ----------------------------------------------------------

    def name(self):
        return type(self).__name__

    def describe(self):
        """The node's class and where it was created, for error messages."""
        return f"{type(self).__name__} (created at {self.__dict__.get('_dp_created_at', '<unknown>')})"

    def __repr__(self):
        return self.name()

    def __getstate__(self):
        state = self.__dict__.copy()
        # the node's identity in its build travels (seeds, worker caches);
        # its upstream links never do (the engine relinks by tree)
        entry = record.state_of(self)
        if entry is not None:
            state[record.STATE_KEY] = entry
        return state

    def __setstate__(self, state):
        entry = state.pop(record.STATE_KEY, None)
        self.__dict__.update(state)
        record.restore(self, entry)

    def check_request_consistency(self, request):
        """Raise ``BatchRequestError`` where this node cannot serve
        ``request``: a key it does not provide, a ROI outside what it
        provides or off its voxel grid. Called for every node while a
        request is planned, before any task runs; a node with further
        requirements on its requests overrides it (calling ``super()``)."""
        check_request(self, request)


def shallow_copy(node):
    """A copy of ``node`` sharing its members (cheap; for per-request
    state)."""
    return record.copy(node)
