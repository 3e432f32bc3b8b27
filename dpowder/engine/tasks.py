"""The functions tasks run: the same ones in a dask graph and in-process.

Each runs on a shallow copy of its node carrying the state diff of the
node's ``prepare`` for this request, so concurrently planned requests never
share mutable node state. A failure re-raises the original exception with
the node and request attached as a note.

Nodes that are not dpowder's own may draw from the global ``random`` and
``np.random`` in ``process`` and ``provide``, as gunpowder's do; there, as
in gunpowder, a source's ``provide`` starts from the generators seeded with
its request's gunpowder seed and a ``process`` continues from the state its
upstream left. That state travels with the batch (``GLOBAL_STATE``), so the
draws are the same on every scheduler. In the calling thread of a
``request_batch`` (``PERSIST``), attributes such a node rebinds in
``process``/``provide`` are written back to the node, so the next request
sees them, as in gunpowder.
"""

import contextvars
import random
import threading
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from ..array import Array
from ..errors import BatchFilterError
from ..profiling import ProfilingStats, Timing
from . import record
from .consistency import check_batch, check_dtypes
from .plan import (
    GLOBAL_SEED,
    StepKind,
    holding_global_rng,
    is_own,
    uses_global_rng,
    mark_failed,
    removes_placeholders,
    seed_global,
    without_placeholders,
)

# True inside a task (a request_batch made there runs in this process, and
# errors are not wrapped there); not the plan step kind INLINE
IN_TASK = contextvars.ContextVar("dpowder_in_task", default=False)

# the thread whose user-facing request_batch is running in this context:
# tasks running there (in-process, one at a time) may write node state back
PERSIST: contextvars.ContextVar[int | None] = contextvars.ContextVar("dpowder_persist", default=None)

# a batch's __dict__ key: the global generators' state its last node left,
# ("seed", s) (seeded, nothing drawn since) or ("state", random's, numpy's)
GLOBAL_STATE = "_dp_global"


def _with_note(error, node, request):
    mark_failed(error, node, f"serving {request!r}")
    note = f"dpowder: in {node.describe()}, serving {request!r}"
    if note not in getattr(error, "__notes__", ()):
        error.add_note(note)
    return error


def persisting():
    """Let tasks run in this thread, in this context, write back node state
    (a user-facing ``request_batch`` in-process). Returns the token to
    ``PERSIST.reset``."""
    return PERSIST.set(threading.get_ident())


def _persists():
    return PERSIST.get() == threading.get_ident()


def _snapshot(copy):
    """The attributes of a node copy before its ``process``/``provide``, when
    they are to be written back afterwards."""
    return dict(copy.__dict__) if _persists() else None


_MISSING = object()


def _write_back(original, before, copy):
    """Attributes ``copy`` rebound, added or deleted since ``before``, onto
    ``original`` (gunpowder's nodes keep them for the next request)."""
    if before is None or original is copy:
        return
    target = original.__dict__
    after = copy.__dict__
    for key, value in after.items():
        if not key.startswith("_dp_") and before.get(key, _MISSING) is not value:
            target[key] = value
    for key in before:
        if key not in after and not key.startswith("_dp_"):
            target.pop(key, None)


def _restore_global(carried, fallback_seed):
    if carried is None:
        seed_global(fallback_seed)
    elif carried[0] == "seed":
        seed_global(carried[1])
    else:
        random.setstate(carried[1])
        np.random.set_state(carried[2])  # noqa: NPY002 (gunpowder nodes draw from it)


def _global_state():
    return ("state", random.getstate(), np.random.get_state())  # noqa: NPY002


def _in_task(function, *args):
    """Run ``function`` as a task body: a ``request_batch`` made inside it (a
    node asking another pipeline) runs in this process, never back on the
    scheduler the task itself runs on."""
    token = IN_TASK.set(True)
    try:
        return function(*args)
    finally:
        IN_TASK.reset(token)


def _prepared_copy(node, work):
    """A shallow copy of ``node`` for one request: the state diff of its
    ``prepare`` applied, its random generators seeded."""
    n = record.copy(node, seed=work.seed)
    if work.state:
        n.__dict__.update(work.state)
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
    return _provide(_prepared_copy(node, work), work.request, inline=True, original=node)


def _process(n, node_batch, request, carried, fallback_seed):
    """``n.process``; for a node not of dpowder, with the global generators
    continuing from ``carried``. Returns the result and the generators'
    state after it."""
    if not uses_global_rng(n):
        # the generators' state passes through unchanged, as through a
        # gunpowder node that does not draw
        return _in_task(n.process, node_batch, request), carried
    with holding_global_rng():
        _restore_global(carried, fallback_seed)
        processed = _in_task(n.process, node_batch, request)
        return processed, _global_state()


def process_filter(n, node, batch, request, dependencies, seed):
    """The process half of gunpowder's ``BatchFilter`` contract, for every
    caller (tasks, and the driver-side consumers of streams): ``n`` (``node``
    or its prepared copy) processes the batch cropped to its dependencies
    (private arrays), the result is merged back, cut to ``request`` and its
    dtypes checked. Raises with the node and request noted."""
    try:
        node_batch = _private(batch if dependencies is None else batch.crop(dependencies), batch)
        processed, carried = _process(n, node_batch, request, batch.__dict__.get(GLOBAL_STATE), seed)
        if processed is None:
            processed = node_batch
        elif not hasattr(processed, "arrays"):
            raise BatchFilterError(
                f"{node.describe()}.process returned a {type(processed).__name__}; return a Batch "
                f"or None (batch changed in place)"
            )
        result = batch.merge(processed, merge_profiling_stats=False).crop(request)
        check_dtypes(node, result, request)
    except Exception as e:
        raise _with_note(e, node, request)
    result.__dict__[GLOBAL_STATE] = carried
    return result


def run_filter(work, node, batch):
    """``process`` of a ``BatchFilter`` in a task, on a prepared copy of
    the node (``process_filter``); what a non-dpowder node rebinds is written
    back in the calling thread."""
    n = _prepared_copy(node, work)
    before = None if is_own(n) else _snapshot(n)
    timing = Timing(n, "process")
    timing.start()
    result = process_filter(n, node, batch, work.request, work.dependencies, work.seed)
    _write_back(node, before, n)
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
    if batches:
        # as in gunpowder, what follows continues from the last upstream
        batch.__dict__[GLOBAL_STATE] = batches[-1].__dict__.get(GLOBAL_STATE)
    for b in batches:
        batch.profiling_stats.merge_with(b.profiling_stats)
    timing.stop()
    batch.profiling_stats.add(timing)
    return batch


def _provide_own(node, request, global_seed):
    batch = node.provide(request)
    d = getattr(batch, "__dict__", None)  # not a Batch: check_batch says so
    if global_seed is not None and d is not None and GLOBAL_STATE not in d:
        d[GLOBAL_STATE] = ("seed", global_seed)
    return batch


def _provide_global(node, request, global_seed, original):
    """``provide`` of a node not of dpowder: the global generators seeded
    with its request's gunpowder seed first (gunpowder's ``set_seeds``)."""
    before = _snapshot(node)
    with holding_global_rng():
        seed_global(global_seed if global_seed is not None else request.random_seed)
        batch = node.provide(request)
        state = _global_state()
    _write_back(original, before, node)
    if hasattr(batch, "__dict__"):
        batch.__dict__[GLOBAL_STATE] = state
    return batch


def _provide(node, request, inline, original=None):
    """gunpowder's ``request_batch`` around ``node.provide``: placeholders
    removed (unless the node enabled them), the batch checked against the
    request and cut to it. With ``inline``, a ``request_batch`` the node
    makes (a data-dependent node asking upstream) runs in this process.
    ``original``: the node ``node`` is a copy of."""
    if removes_placeholders(node):
        request = without_placeholders(request)
    global_seed = node.__dict__.get(GLOBAL_SEED)
    timing = Timing(node, "provide")
    timing.start()
    token = IN_TASK.set(True) if inline else None
    try:
        if uses_global_rng(node):
            batch = _provide_global(node, request.copy(), global_seed, original)
        elif is_own(node):
            batch = _provide_own(node, request.copy(), global_seed)
        else:
            # a gunpowder-era node that never draws: no lock, no seeding, but
            # what it rebinds is written back as for the others
            before = _snapshot(node)
            batch = _provide_own(node, request.copy(), global_seed)
            _write_back(original, before, node)
        check_batch(node, batch, request)
    except Exception as e:
        raise _with_note(e, node, request)
    finally:
        if token is not None:
            IN_TASK.reset(token)
    _keep_requested(batch, request)
    timing.stop()
    batch.profiling_stats.add(timing)
    return batch


def provide_inline(work, node):
    """A data-dependent node in this process: its ``provide`` asks upstream
    as it goes."""
    return _provide(_prepared_copy(node, work), work.request, inline=True, original=node)


def provide_on_driver(work, node):
    """A node that runs in the calling process (``runs_on_driver``): its
    ``provide`` schedules its upstream through the engine (not inline)."""
    return _provide(_prepared_copy(node, work), work.request, inline=False, original=node)



def run_inline_task(work, *nodes):
    """A data-dependent node and its whole upstream in one task. ``nodes``
    are the subtree's nodes indexed by ``work.tree``."""
    return provide_inline(work, record.relink(nodes, work.tree))


class Run(NamedTuple):
    """How a plan step of one kind runs.

    ``in_task(work, *nodes, *batches)`` is its task function in a dask
    graph: ``nodes`` the step's node, or with ``subtree`` the node's whole
    upstream subtree (indexed by ``work.tree``, relinked in the task), and
    ``batches`` its upstream steps' results. ``None``: the step runs only in
    the calling process. ``here(work, node, *batches)`` runs it in this
    process, on the live node."""

    in_task: Callable[..., Any] | None
    here: Callable[..., Any]
    subtree: bool = False


#: every step kind's ``Run``: what lowering and in-process execution call
RUNS: dict[StepKind, Run] = {
    StepKind.SOURCE: Run(run_source, run_source),
    StepKind.FILTER: Run(run_filter, run_filter),
    StepKind.MULTI: Run(run_combine, run_combine),
    StepKind.INLINE: Run(run_inline_task, provide_inline, subtree=True),
    StepKind.DRIVER: Run(None, provide_on_driver),
}


def copy_batch(batch):
    """A deep copy of a batch, for a second consumer of one result."""
    import copy

    return copy.deepcopy(batch)


def attach_stats(stats, batch):
    """Add the driver's ``prepare`` timings to the final batch."""
    if stats is not None:
        batch.profiling_stats.merge_with(stats)
    return batch
