"""The functions tasks run: the same ones in a dask graph and in-process.

Each runs on a shallow copy of its node carrying the state diff of the
node's ``prepare`` for this request, so concurrently planned requests never
share mutable node state. A failure re-raises the original exception with
the node and request attached as a note.
"""

import contextvars

import numpy as np

from ..array import Array
from ..errors import BatchFilterError
from ..nodes.batch_provider import shallow_copy
from ..profiling import ProfilingStats, Timing
from .checks import check_batch
from .plan import apply_seed, without_placeholders

# True while a task runs a node's upstream in-process (data-dependent nodes)
INLINE = contextvars.ContextVar("dpowder_inline", default=False)


def _with_note(error, node, request):
    note = f"dpowder: in {node.describe()}, serving {request!r}"
    if note not in getattr(error, "__notes__", ()):
        error.add_note(note)
    return error


def _in_task(function, *args):
    """Run ``function`` as a task body: a ``request_batch`` made inside it (a
    node asking another pipeline) runs in this process, never back on the
    scheduler the task itself runs on."""
    token = INLINE.set(True)
    try:
        return function(*args)
    finally:
        INLINE.reset(token)


def _prepared_copy(node, work):
    """A shallow copy of ``node`` for one request: the state diff of its
    ``prepare`` applied, its random generators seeded."""
    n = shallow_copy(node)
    if work.state:
        n.__dict__.update(work.state)
    apply_seed(n, work.seed)
    return n


def _private(batch, upstream):
    """The batch a node processes: new ``Array`` and ``Graph`` objects it may
    rebind, reshape or move in place (gunpowder nodes do), sharing the
    arrays' data (C-contiguous). An upstream result can be shared by
    identical sub-requests, so it is never changed itself."""
    view = batch._like()
    for key, array in batch.arrays.items():
        data = array.data
        if isinstance(data, np.ndarray) and not data.flags.c_contiguous:
            # one memory layout everywhere: numpy's float reductions round
            # differently over a transposed view than over its contiguous
            # copy, and a batch arriving from another worker is contiguous
            data = np.ascontiguousarray(data)
        view.arrays[key] = Array._make(data, array.spec.copy(), dict(array.attrs))
    for key, graph in batch.graphs.items():
        # a graph cropped to the dependencies is a fresh copy already
        view.graphs[key] = graph.copy() if graph is upstream.graphs.get(key) else graph
    return view


def _stats_with(stats, timing):
    new = ProfilingStats()
    new.merge_with(stats)
    new.add(timing)
    return new


def _keep_requested(batch, request):
    for key in [k for k in batch.keys() if k not in request]:
        del batch[key]
    return batch


def run_source(work, node):
    """``provide`` of a node without upstream."""
    return _provide(_prepared_copy(node, work), work.request, inline=True)


def run_filter(work, node, batch):
    """``process`` of a ``BatchFilter``: crop to its dependencies, process,
    merge the result back and crop to what was requested downstream."""
    n = _prepared_copy(node, work)
    timing = Timing(n, "process")
    timing.start()
    request = work.request
    try:
        node_batch = _private(batch if work.dependencies is None else batch.crop(work.dependencies), batch)
        processed = _in_task(n.process, node_batch, request)
        if processed is None:
            processed = node_batch
        elif not hasattr(processed, "arrays"):
            raise BatchFilterError(
                f"{node.describe()}.process returned a {type(processed).__name__}; return a Batch "
                f"or None (batch changed in place)"
            )
        result = batch.merge(processed, merge_profiling_stats=False).crop(request)
    except Exception as e:
        raise _with_note(e, node, request)
    timing.stop()
    result.profiling_stats = _stats_with(batch.profiling_stats, timing)
    return result


def run_combine(work, node, *batches):
    """``combine`` of a node whose upstream requests were planned ahead."""
    n = _prepared_copy(node, work)
    timing = Timing(n, "process")
    timing.start()
    try:
        batch = _in_task(n.combine, list(batches), work.request)
        check_batch(node, batch, work.request)
    except Exception as e:
        raise _with_note(e, node, work.request)
    _keep_requested(batch, work.request)
    for b in batches:
        batch.profiling_stats.merge_with(b.profiling_stats)
    timing.stop()
    batch.profiling_stats.add(timing)
    return batch


def _provide(node, request, inline):
    """gunpowder's ``request_batch`` around ``node.provide``: placeholders
    removed, the batch checked against the request and cut to it. With
    ``inline``, a ``request_batch`` the node makes (a data-dependent node
    asking upstream) runs in this process."""
    request = without_placeholders(request)
    timing = Timing(node, "provide")
    timing.start()
    token = INLINE.set(True) if inline else None
    try:
        batch = node.provide(request.copy())
        check_batch(node, batch, request)
    except Exception as e:
        raise _with_note(e, node, request)
    finally:
        if token is not None:
            INLINE.reset(token)
    _keep_requested(batch, request)
    timing.stop()
    batch.profiling_stats.add(timing)
    return batch


def provide_inline(work, node):
    """A data-dependent node in this process: its ``provide`` asks upstream
    as it goes."""
    return _provide(_prepared_copy(node, work), work.request, inline=True)


def provide_on_driver(work, node):
    """A node that runs in the calling process (``runs_on_driver``): its
    ``provide`` schedules its upstream through the engine (not inline)."""
    return _provide(_prepared_copy(node, work), work.request, inline=False)


def relink(nodes, tree):
    """Copies of ``nodes`` (which travel without their upstream links)
    linked as ``tree``, a nested ``(index, [children])`` structure of
    indices into ``nodes``; returns the root."""
    copies = [shallow_copy(n) for n in nodes]

    def link(subtree):
        index, children = subtree
        node = copies[index]
        node.__dict__["_dp_upstream"] = [link(child) for child in children]
        return node

    return link(tree)


def run_inline_task(work, *nodes):
    """A data-dependent node and its whole upstream in one task. ``nodes``
    are the subtree's nodes indexed by ``work.tree``."""
    return provide_inline(work, relink(nodes, work.tree))


def copy_batch(batch):
    """A deep copy of a batch, for a second consumer of one result."""
    import copy

    return copy.deepcopy(batch)


def attach_stats(stats, batch):
    """Add the driver's ``prepare`` timings to the final batch."""
    if stats is not None:
        batch.profiling_stats.merge_with(stats)
    return batch
