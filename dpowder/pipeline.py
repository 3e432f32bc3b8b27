"""``Pipeline`` and ``build``: composing nodes, setting them up, tearing
them down."""

import uuid

from .errors import BatchFilterError, BatchRequestError, DpowderError, PipelineRequestError, PipelineSetupError
from .engine import record
from .engine.errors_wrap import setting_up
from .nodes.batch_provider import BatchProvider
from .errors import InputTypeError

__all__ = [
    "Pipeline",
    "build",
    "to_xarray",
    "PipelineSetupError",
    "PipelineRequestError",
    "BatchRequestError",
    "BatchFilterError",
]


class Pipeline:
    """A tree of nodes: ``output`` is the most downstream node, ``children``
    the pipelines feeding it. Made with ``+`` from nodes and tuples::

        pipeline = (source_a, source_b) + MergeProvider() + Normalize(RAW)
    """

    def __init__(self, node):
        if not isinstance(node, BatchProvider):
            raise InputTypeError(f"a Pipeline is made of BatchProviders, got {type(node).__name__}")
        self.output = node
        self.children = []
        self.initialized = False

    def traverse(self, callback, reverse=False):
        """Call ``callback(pipeline)`` for this pipeline and every upstream
        one: downstream first, or sources first with ``reverse``. Returns the
        results in that order."""
        results = []
        if not reverse:
            results.append(callback(self))
        for child in self.children:
            results.extend(child.traverse(callback, reverse))
        if reverse:
            results.append(callback(self))
        return results

    def copy(self):
        """A copy of the structure; the nodes are shared."""
        pipeline = Pipeline(self.output)
        pipeline.children = [c.copy() for c in self.children]
        return pipeline

    def __add__(self, other):
        if isinstance(other, BatchProvider):
            other = Pipeline(other)
        if not isinstance(other, Pipeline):
            return NotImplemented
        result = other.copy()
        for leaf in result._leaves():
            leaf.children.append(self.copy())
        return result

    def _leaves(self):
        return [p for p in self.traverse(lambda p: p) if not p.children]

    def __radd__(self, other):
        if not isinstance(other, tuple):
            return NotImplemented
        children = []
        for o in other:
            if isinstance(o, BatchProvider):
                o = Pipeline(o)
            if not isinstance(o, Pipeline):
                raise InputTypeError(f"only nodes and pipelines can be combined in a tuple, got {type(o).__name__}")
            children.append(o)
        result = self.copy()
        for leaf in result._leaves():
            leaf.children.extend(c.copy() for c in children)
        return result

    # -- build ----------------------------------------------------------------

    def setup(self, scheduler=None):
        """Link nodes to their upstream providers and call ``setup`` on each,
        sources first. ``scheduler`` (optional): a ``distributed.Client`` or a
        dask scheduler name/``get`` that requests to this pipeline use."""
        build = record.BuildRecord(uuid.uuid4().hex[:8], scheduler)
        order = self.traverse(lambda p: p)
        entered = set()
        for index, pipeline in enumerate(order):
            node = pipeline.output
            if id(node) not in entered:
                entered.add(id(node))
                record.enter(node, build, f"{index}")
            # a leaf keeps the links made by hand (add_upstream_provider)
            if pipeline.children or not record.linked_by_hand(node):
                record.link(node, [c.output for c in pipeline.children])

        done = set()

        def setup_node(pipeline):
            node = pipeline.output
            if id(node) in done:
                return
            done.add(id(node))
            try:
                if hasattr(node, "_dp_init_spec"):
                    node._dp_init_spec()
                else:
                    node.__dict__["_spec"] = None
                    node.provided_items.clear()
                with setting_up():
                    node.setup()
            except DpowderError:
                raise
            except Exception as e:
                raise PipelineSetupError(f"{node.describe()}.setup() failed: {type(e).__name__}: {e}") from e

        self.traverse(setup_node, reverse=True)
        self.initialized = True

    def internal_teardown(self):
        """Call ``teardown`` on every node."""
        done = set()

        def teardown_node(pipeline):
            node = pipeline.output
            if id(node) not in done:
                done.add(id(node))
                node.teardown()

        self.traverse(teardown_node)
        self.initialized = False

    @property
    def spec(self):
        """The ``ProviderSpec`` of the output node (after build)."""
        return self.output.spec

    def request_batch(self, request):
        """Plan ``request``, lower it to a dask graph and compute it."""
        from .engine.errors_wrap import serve_pipeline

        return serve_pipeline(self, request, self.output.request_batch)

    def to_dask(self, request, fuse=False):
        """The lazy form of ``request_batch``: a dask ``Delayed`` of the
        ``Batch``, planned now (request errors are raised here). By default
        one task per node; ``fuse=True`` makes the request one task (best
        for many batches on a cluster: nothing but the result moves)."""
        from .engine.execute import to_dask

        return to_dask(self.output, request, fuse=fuse)

    def __repr__(self):
        def render(p, depth):
            lines = ["  " * depth + p.output.name()]
            for c in p.children:
                lines.extend(render(c, depth + 1))
            return lines

        return "\n".join(render(self, 0))


class build:
    """Set up a pipeline on entering the context and tear it down on leaving
    it::

        with build(pipeline) as p:
            batch = p.request_batch(request)

    Args:

        pipeline (Pipeline or BatchProvider): What to build.

        scheduler (optional): A ``distributed.Client``, a dask scheduler name
            (``"sync"``, ``"threads"``, ``"processes"``) or ``get`` function
            for this pipeline's requests. By default the active dask
            scheduler or client is used, else everything runs in-process.
    """

    def __init__(self, pipeline, scheduler=None):
        if isinstance(pipeline, BatchProvider):
            pipeline = Pipeline(pipeline)
        self.pipeline = pipeline
        self.scheduler = scheduler

    def __enter__(self):
        self.pipeline.setup(scheduler=self.scheduler)
        return self.pipeline

    def __exit__(self, exc_type, exc_value, tb):
        self.pipeline.internal_teardown()
        return False


def to_xarray(pipeline, request, coords="corner"):
    """The batch of ``request`` to ``pipeline`` as an ``xarray.Dataset`` in
    world coordinates, lazily where the pipeline allows: for a pipeline
    ending in ``Scan``, its variables are dask arrays whose chunks are the
    blocks, so that selecting a region (``.sel``, ``.isel``) and computing it
    runs only the blocks that intersect it. Other pipelines are computed now.

    Args:

        pipeline (Pipeline): A built pipeline.

        request (BatchRequest): What to ask it (non-empty).

        coords (str): ``"corner"`` (voxel begin corners, default) or
            ``"center"`` (voxel centres), see ``Array.to_xarray``.
    """
    from .batch import Batch

    lazy = pipeline.to_dask(request)
    batch = lazy if isinstance(lazy, Batch) else lazy.compute()
    return batch.to_xarray(coords=coords)
