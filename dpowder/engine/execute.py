"""Lower a plan into a dask graph and compute it.

Each node object enters the graph once, as data under its own key, so that
a large member is shipped once per worker, not once per task. Task keys are
deterministic within a build: the node's identity, the request's ROIs and
seed, the state diff of its ``prepare`` and the keys of its inputs.
"""

import hashlib
import secrets

import dask
import dask.local
import dask.multiprocessing
import dask.threaded
import numpy as np
from dask.delayed import Delayed

from ..batch_request import BatchRequest
from ..errors import PipelineRequestError
from ..profiling import ProfilingStats
from . import allocator, record, tasks
from .cluster import build_scheduler
from .placement import place, ready
from .plan import StepKind, Work, plan


def _request_token(request):
    parts = [str(request._random_seed)]
    for key, spec in sorted(request.items(), key=lambda kv: kv[0]):
        parts.append(f"{key}:{spec.roi}:{getattr(spec, 'voxel_size', None)}:{spec.placeholder}")
    return "|".join(parts)


def _value_token(value):
    """A short deterministic description of a state value: small values and
    arrays by content, anything else by dask's tokenize (by identity where
    that cannot be done deterministically)."""
    if value is None or isinstance(value, (bool, int, float, str, np.generic)):
        return repr(value)
    if isinstance(value, np.ndarray):
        return hashlib.blake2b(np.ascontiguousarray(value).data, digest_size=8).hexdigest() + str(value.shape)
    if isinstance(value, (tuple, list)) and len(value) < 64:
        return "(" + ",".join(_value_token(v) for v in value) + ")"
    try:
        return dask.base.tokenize(value, ensure_deterministic=True)
    except Exception:
        return f"id{id(value)}"


def _step_key(step, upstream_keys=()):
    """The key of a step: the node, the request (ROIs and seed), what
    ``prepare`` decided (the state diff) and the keys of its inputs. Equal
    keys mean equal work, so identical sub-requests are computed once and
    different decisions never share a result."""
    node = step.node
    parts = [_request_token(step.work.request), *upstream_keys]
    if step.work.state:
        parts.extend(f"{k}={_value_token(v)}" for k, v in sorted(step.work.state.items()))
    if step.work.dependencies is not None:
        parts.append(_request_token(step.work.dependencies))
    token = hashlib.blake2b("|".join(parts).encode(), digest_size=8).hexdigest()
    entry = record.of(node)
    build, uid = (entry.build.build_id, entry.uid) if entry is not None else ("", "")
    return f"{type(node).__name__}-{step.kind.value}-{build}-{uid}-{token}"


# graph keys of node objects start with this
NODE_PREFIX = "dpowder-node-"


def _node_key(node):
    entry = record.of(node)
    build, uid = (entry.build.build_id, entry.uid) if entry is not None else ("nobuild", id(node))
    return f"{NODE_PREFIX}{type(node).__name__}-{build}-{uid}"


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

    consumed: dict = {}

    def use(key):
        # nodes change their input batch in place (gunpowder's habit): a
        # result shared by identical sub-requests goes to each further
        # consumer as a copy
        n = consumed.get(key, 0)
        consumed[key] = n + 1
        if n == 0:
            return key
        copy_key = f"copy-{n}-{key}"
        graph[copy_key] = (tasks.copy_batch, key)
        return copy_key

    def visit(step):
        node = step.node
        upstream_keys = [visit(u) for u in step.upstream]
        key = _step_key(step, upstream_keys)
        upstream_keys = [use(k) for k in upstream_keys]
        if key in graph:
            return key
        function, subtree = _task_function(step.kind, node)
        if subtree:
            nodes, step.work.tree = record.subtree(node)
        else:
            nodes = [node]
        graph[key] = (function, step.work, *[node_key(n) for n in nodes], *upstream_keys)
        return key

    key = visit(root)
    final = f"batch-{key}"
    graph[final] = (tasks.attach_stats, stats, key)
    return graph, final


def _lower_fused(root, stats):
    graph = {}
    node_keys: list = []
    index_of = {}

    def index(node):
        if id(node) not in index_of:
            index_of[id(node)] = len(node_keys)
            node_keys.append(_node_key(node))
            graph[node_keys[-1]] = node
        return index_of[id(node)]

    def skeleton(step):
        work = step.work
        _, subtree = _task_function(step.kind, step.node)
        if subtree:
            # the subtree's nodes, as indices into this task's node list
            work = Work(work.request, work.dependencies, work.state, work.seed, record.tree_of(step.node, index))
        # the kind first: a tuple starting with a callable would be a task to dask
        return (step.kind, work, index(step.node), tuple(skeleton(u) for u in step.upstream))

    structure = skeleton(root)

    def step_key(step):
        return _step_key(step, [step_key(u) for u in step.upstream])

    # one task, the batch's: a second one (its planning stats attached)
    # would wait behind the work of every batch submitted after it, holding
    # the made batch on the worker meanwhile
    key = "batch-fused-" + step_key(root)
    graph[key] = (run_fused, stats, structure, *node_keys)
    return graph, key


def run_fused(stats, structure, *nodes):
    """Task body of a fused plan: run its steps in this process with this
    worker's node objects (the same task functions as unfused); the batch
    with the planning ``stats`` attached."""
    allocator.tune_allocator()

    def run(skeleton):
        kind, work, index, upstream = skeleton
        function, subtree = _task_function(kind)
        if subtree:
            # work.tree indexes the fused task's node list
            return function(work, *nodes)
        return function(work, nodes[index], *[run(u) for u in upstream])

    return tasks.attach_stats(stats, run(structure))


def _task_function(kind, node=None):
    """The task function of a step of ``kind`` (``tasks.RUNS``) and whether
    it takes the node's whole subtree."""
    run = tasks.RUNS[kind]
    if run.in_task is None:
        where = f"{node.describe()}: " if node is not None else ""
        raise PipelineRequestError(
            f"{where}a {kind.value} step runs in the calling process and cannot be lowered into a task"
        )
    return run.in_task, run.subtree


def execute_local(step):
    """Run a plan in this process, without dask (the same task functions)."""
    batches = [execute_local(u) for u in step.upstream]
    return tasks.RUNS[step.kind].here(step.work, step.node, *batches)


def _has_driver_step(root):
    return any(step.kind is StepKind.DRIVER for step in root.walk())


def run_inline(node, request, as_provide=False):
    """Plan and run ``request`` in this process (inside a task, for nodes
    whose upstream requests depend on data). With ``as_provide``, ``node``
    is run as the plain filter it derives from, ignoring its own
    ``provide``."""
    token = tasks.IN_TASK.set(True)
    try:
        step = plan(node, _own_copy(request), own_provide=not as_provide)
        return execute_local(step)
    finally:
        tasks.IN_TASK.reset(token)


def _own_copy(request):
    """The caller's request, copied: ``prepare`` may change the request it
    gets (gunpowder's contract), never the caller's. A request without a
    seed gets a fresh one for this call only, so a loop over one unseeded
    request gets new batches, as in gunpowder."""
    if not isinstance(request, BatchRequest):
        return request
    copy = request.copy()
    if request._random_seed is None:
        copy._random_seed = secrets.randbits(32)
    return copy


def to_dask(node, request, fuse=False):
    """The lazy form of ``node.request_batch(request)``: a dask ``Delayed``
    whose result is the ``Batch``. Planning happens now, so request errors
    are raised here. ``fuse``: one task for the whole request (see
    ``lower``)."""
    stats = ProfilingStats()
    root = plan(node, _own_copy(request), stats)
    if root.kind is StepKind.DRIVER and callable(getattr(root.node, "lowered", None)):
        # a blockwise map at the output lowers itself: a lazy Batch of dask
        # arrays (or, for an empty request, a Delayed over every block)
        return root.node.lowered(root.work.request)
    if _has_driver_step(root):
        names = sorted({s.node.name() for s in root.walk() if s.kind is StepKind.DRIVER})
        raise PipelineRequestError(
            f"{node.describe()}: the pipeline contains {', '.join(names)}, which run in the calling "
            f"process and schedule their upstream themselves; use request_batch() instead of to_dask()"
        )
    graph, key = lower(root, stats, fuse=fuse)
    return Delayed(key, graph)


def compute(graph, key, where=None):
    """Compute ``key`` of ``graph`` where ``where`` (a ``Placement``) says;
    ``None`` is the synchronous scheduler."""
    if where is None or where.kind == "sync":
        return dask.local.get_sync(graph, key)
    if where.kind == "distributed":
        return ready(where.client).get(graph, key)
    if where.kind == "threads":
        return dask.threaded.get(graph, key, num_workers=where.workers)
    if where.kind == "processes":
        return dask.multiprocessing.get(graph, key, num_workers=where.workers or None)
    return where.get(graph, key)


def request_batch(node, request):
    """Plan ``request``, lower it to a dask graph, compute it where
    ``placement.place`` says (the scheduler given at build, dask's
    configured one, the active ``distributed.Client``, else in-process)."""
    if tasks.IN_TASK.get():
        return run_inline(node, request)
    stats = ProfilingStats()
    root = plan(node, _own_copy(request), stats)
    where = place(build_scheduler(node), 1, "request")
    if where.kind == "sync" or _has_driver_step(root):
        # nodes downstream of a driver-side node (Scan, Train) run here too
        return tasks.attach_stats(stats, execute_local(root))
    # one batch on a scheduler: its plan runs as one task, no intermediate
    # batch crosses between workers
    graph, key = lower(root, stats, fuse=True)
    return compute(graph, key, where)
