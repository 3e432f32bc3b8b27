"""Lower a plan into a dask graph and compute it.

Each node object enters the graph once, as data under its own key, so that
a large member is shipped once per worker, not once per task. Task keys are
deterministic within a build: the node's identity, the request's ROIs and
its seed.
"""

import hashlib

import dask
from dask.delayed import Delayed

from ..profiling import ProfilingStats
from . import tasks
from ..errors import PipelineRequestError
from .plan import DRIVER, FILTER, INLINE, MULTI, SOURCE, Work, plan


def _request_token(request):
    parts = [str(request._random_seed)]
    for key, spec in sorted(request.items(), key=lambda kv: kv[0]):
        parts.append(f"{key}:{spec.roi}:{getattr(spec, 'voxel_size', None)}:{spec.placeholder}")
    return hashlib.blake2b("|".join(parts).encode(), digest_size=8).hexdigest()


def _node_key(node):
    build = node.__dict__.get("_dp_build", "nobuild")
    return f"dpowder-node-{type(node).__name__}-{build}-{node.__dict__.get('_dp_uid', id(node))}"


def _subtree(node):
    """Every node upstream of ``node`` (itself first) and the nested
    ``(index, [children])`` structure linking them."""
    nodes = []
    index_of = {}

    def visit(n):
        if id(n) not in index_of:
            index_of[id(n)] = len(nodes)
            nodes.append(n)
        return (index_of[id(n)], [visit(u) for u in n._dp_upstream_list()])

    tree = visit(node)
    return nodes, tree


def lower(root, stats=None, fuse=False):
    """The dask graph (a dict) of a plan, and the key of its batch.

    By default one task per node per request. With ``fuse``, the whole plan
    of the request is one task (its nodes still one graph key each): no
    intermediate batch leaves the worker, and the scheduler pays for one task
    per batch instead of one per node.
    """
    if fuse:
        return _lower_fused(root, stats)
    graph = {}

    def node_key(node):
        key = _node_key(node)
        if key not in graph:
            graph[key] = node
        return key

    def visit(step):
        node = step.node
        key = f"{type(node).__name__}-{step.kind}-{node.__dict__.get('_dp_build', '')}-{node.__dict__.get('_dp_uid', '')}-{_request_token(step.work.request)}"
        if key in graph:
            return key
        if step.kind == SOURCE:
            graph[key] = (tasks.run_source, step.work, node_key(node))
        elif step.kind == FILTER:
            graph[key] = (tasks.run_filter, step.work, node_key(node), visit(step.upstream[0]))
        elif step.kind == MULTI:
            graph[key] = (tasks.run_combine, step.work, node_key(node), *[visit(u) for u in step.upstream])
        elif step.kind == INLINE:
            nodes, tree = _subtree(node)
            step.work.tree = tree
            graph[key] = (tasks.run_inline_task, step.work, *[node_key(n) for n in nodes])
        else:
            raise ValueError(f"unknown plan step kind {step.kind}")
        return key

    key = visit(root)
    final = f"batch-{key}"
    graph[final] = (tasks.attach_stats, stats, key)
    return graph, final


def _lower_fused(root, stats):
    graph = {}
    node_keys = []
    index_of = {}

    def index(node):
        if id(node) not in index_of:
            index_of[id(node)] = len(node_keys)
            node_keys.append(_node_key(node))
            graph[node_keys[-1]] = node
        return index_of[id(node)]

    def relink_tree(node):
        return (index(node), [relink_tree(u) for u in node._dp_upstream_list()])

    def skeleton(step):
        work = step.work
        if step.kind == INLINE:
            # the subtree's nodes, as indices into this task's node list
            work = Work(work.request, work.dependencies, work.state, work.seed, relink_tree(step.node))
        return (step.kind, work, index(step.node), tuple(skeleton(u) for u in step.upstream))

    structure = skeleton(root)
    node = root.node
    key = f"{type(node).__name__}-fused-{node.__dict__.get('_dp_build', '')}-{node.__dict__.get('_dp_uid', '')}-{_request_token(root.work.request)}"
    graph[key] = (run_fused, structure, *node_keys)
    final = f"batch-{key}"
    graph[final] = (tasks.attach_stats, stats, key)
    return graph, final


def run_fused(structure, *nodes):
    """Task body of a fused plan: run its steps in this process with this
    worker's node objects (the same task functions as unfused)."""

    def run(skeleton):
        kind, work, index, upstream = skeleton
        if kind == SOURCE:
            return tasks.run_source(work, nodes[index])
        if kind == FILTER:
            return tasks.run_filter(work, nodes[index], run(upstream[0]))
        if kind == MULTI:
            return tasks.run_combine(work, nodes[index], *[run(u) for u in upstream])
        if kind == INLINE:
            return tasks.run_inline_task(work, *nodes)
        raise ValueError(f"plan step kind {kind} cannot run in a task")

    return run(structure)


def execute_local(step):
    """Run a plan in this process, without dask (the same task functions)."""
    work = step.work
    if step.kind == SOURCE:
        return tasks.run_source(work, step.node)
    if step.kind == FILTER:
        return tasks.run_filter(work, step.node, execute_local(step.upstream[0]))
    if step.kind == MULTI:
        return tasks.run_combine(work, step.node, *[execute_local(u) for u in step.upstream])
    if step.kind == INLINE:
        return tasks.provide_inline(_seeded_copy(step.node, work.seed), work.request)
    if step.kind == DRIVER:
        return tasks.provide_on_driver(step.node, work)
    raise ValueError(f"unknown plan step kind {step.kind}")


def _has_driver_step(root):
    return any(step.kind == DRIVER for step in root.walk())


def _seeded_copy(node, seed):
    from ..nodes.batch_provider import shallow_copy

    n = shallow_copy(node)
    n.__dict__["_dp_seed"] = seed
    n.__dict__["_dp_rng"] = None
    return n


def run_inline(node, request, as_provide=False):
    """Plan and run ``request`` in this process (inside a task, for nodes
    whose upstream requests depend on data). With ``as_provide``, ``node``
    is run as the plain filter it derives from, ignoring its own
    ``provide``."""
    token = tasks.INLINE.set(True)
    try:
        step = plan(node, _own_copy(request), own_provide=not as_provide)
        return execute_local(step)
    finally:
        tasks.INLINE.reset(token)


def _own_copy(request):
    """The caller's request, copied: ``prepare`` may change the request it
    gets (gunpowder's contract), never the caller's. Draws its seed first so
    the copy and the original agree."""
    if not hasattr(request, "random_seed"):
        return request
    request.random_seed
    return request.copy()


def _scheduler_of(node):
    scheduler = node.__dict__.get("_dp_scheduler")
    if scheduler is not None:
        return scheduler
    return dask.base.get_scheduler()


def to_dask(node, request, fuse=False):
    """The lazy form of ``node.request_batch(request)``: a dask ``Delayed``
    whose result is the ``Batch``. Planning happens now, so request errors
    are raised here. ``fuse``: one task for the whole request (see
    ``lower``)."""
    stats = ProfilingStats()
    root = plan(node, _own_copy(request), stats)
    if _has_driver_step(root):
        names = sorted({s.node.name() for s in root.walk() if s.kind == DRIVER})
        raise PipelineRequestError(
            f"{node.describe()}: the pipeline contains {', '.join(names)}, which run in the calling "
            f"process and schedule their upstream themselves; use request_batch() instead of to_dask()"
        )
    graph, key = lower(root, stats, fuse=fuse)
    return Delayed(key, graph)


def compute(graph, key, scheduler=None):
    """Compute ``key`` of ``graph`` with ``scheduler`` (a dask ``get``, a
    ``distributed.Client``, or ``None`` for the synchronous scheduler)."""
    if scheduler is None:
        return dask.local.get_sync(graph, key)
    if hasattr(scheduler, "get") and not callable(scheduler):
        return scheduler.get(graph, key)
    if hasattr(scheduler, "gather") and hasattr(scheduler, "get"):
        return scheduler.get(graph, key)
    if isinstance(scheduler, str):
        return dask.base.get_scheduler(scheduler=scheduler)(graph, key)
    return scheduler(graph, key)


def request_batch(node, request):
    """Plan ``request``, lower it to a dask graph, compute it: with the
    scheduler given at build, else the active dask scheduler or
    ``distributed.Client``, else in-process."""
    if tasks.INLINE.get():
        return run_inline(node, request)
    stats = ProfilingStats()
    root = plan(node, _own_copy(request), stats)
    scheduler = _scheduler_of(node)
    if scheduler is None or _has_driver_step(root):
        # nodes downstream of a driver-side node (Scan, Train) run here too
        return tasks.attach_stats(stats, execute_local(root))
    # one batch on a scheduler: its plan runs as one task, no intermediate
    # batch crosses between workers
    graph, key = lower(root, stats, fuse=True)
    return compute(graph, key, scheduler)
