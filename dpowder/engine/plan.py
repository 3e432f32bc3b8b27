"""The upstream pass: a request walks from the output node to the sources.

Each node's ``prepare`` runs here, on the driver, once per request; what it
needs upstream and what it stored on ``self`` (its *state diff*) are recorded
in a ``PlanStep``. Every request error is raised here, before a task runs.

Two kinds of randomness are seeded here (see docs/engine.md, "Seeding"):
``self.rng`` of every node, from ``derive_seed`` (request seed, node,
phase); and, for nodes that are not dpowder's own (gunpowder-era nodes
drawing from the global ``random``/``np.random``), the global generators as
gunpowder seeds them: with the seed of the request the node receives, which
advances twice per hop (``gunpowder_seed``).
"""

import contextlib
import enum
import hashlib
import logging
import random
import threading

import numpy as np

from ..batch_request import BatchRequest
from ..errors import BatchFilterError, InputTypeError
from ..profiling import Timing
from . import global_rng, record


class StepKind(enum.Enum):
    """What a plan step is, which says how it runs (``tasks.RUNS``: the
    task function and its arguments, in a graph and in this process). The
    values name the steps in task keys."""

    #: a node without upstream: ``provide``
    SOURCE = "source"
    #: a ``BatchFilter``: ``process`` of its upstream's batch
    FILTER = "filter"
    #: a node whose upstream requests are planned ahead: ``combine``
    MULTI = "multi"
    #: a data-dependent node (``Reject``): its ``provide`` runs its upstream
    #: inline, in the same task (not ``tasks.IN_TASK``, "inside a task")
    INLINE = "inline"
    #: a node that runs in the calling process (``Scan``, ``Train``)
    DRIVER = "driver"


# short names of the kinds (engine.stream and the tests import them)
SOURCE, FILTER, MULTI, INLINE, DRIVER = (
    StepKind.SOURCE,
    StepKind.FILTER,
    StepKind.MULTI,
    StepKind.INLINE,
    StepKind.DRIVER,
)


# held while a node that is not dpowder's own uses the global generators:
# seeding, drawing and reading their state back is one step, also when
# tasks run in threads (re-entrant: such a node may request batches inline)
GLOBAL_RNG_LOCK = threading.RLock()

# how long a thread waits for it before going on without (a node holding it
# may itself wait on threads that need it, e.g. computing a lazy array)
GLOBAL_RNG_WAIT_S = 30.0

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def holding_global_rng():
    """Hold ``GLOBAL_RNG_LOCK``; after ``GLOBAL_RNG_WAIT_S`` go on without
    it, with a warning (draws from the global generators may then differ
    between runs)."""
    acquired = GLOBAL_RNG_LOCK.acquire(timeout=GLOBAL_RNG_WAIT_S)
    if not acquired:
        logger.warning(
            "waited %.0f s for the global random generators held by another thread; going on "
            "without: draws of non-dpowder nodes from random/np.random may not be reproducible",
            GLOBAL_RNG_WAIT_S,
        )
    try:
        yield
    finally:
        if acquired:
            GLOBAL_RNG_LOCK.release()


# in a node's __dict__ (via its state): the gunpowder seed of its request
GLOBAL_SEED = "_dp_global_seed"


def gunpowder_seed(seed):
    """The seed of a copy of a request with ``seed`` in gunpowder 1.4.4:
    ``hash((seed + 1) ** 2) % 2**32`` (5 -> 36)."""
    return hash((seed + 1) ** 2) % 2**32


def upstream_global_seed(seed):
    """The gunpowder seed of the request a filter sends upstream, when it
    received ``seed``: two copies per hop (``request_batch`` copies the
    request, ``provide`` copies it again or ``update_with``s it)."""
    return gunpowder_seed(gunpowder_seed(seed))


def seed_global(seed):
    """Seed the global ``random`` and ``np.random`` as gunpowder's
    ``set_seeds`` does."""
    random.seed(seed)
    np.random.seed(seed % 2**32)


def stream_seed(base_seed, index):
    """The seed of the ``index``-th batch of a stream (``Train``,
    ``PreCache``) started from a request with seed ``base_seed``: the same in
    every process."""
    digest = hashlib.blake2b(f"{base_seed}:stream:{index}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "little")


def derive_seed(request_seed, uid, phase):
    """A 64 bit seed from a request's seed, a node's identity and a phase
    (0: prepare, 1: process), the same in every process."""
    digest = hashlib.blake2b(f"{request_seed}:{uid}:{phase}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


class Work:
    """What a task needs besides the node and its inputs: the request, the
    dependencies, the state diff, the seed. Small, pickled with the task."""

    __slots__ = ("request", "dependencies", "state", "seed", "tree")

    def __init__(self, request, dependencies=None, state=None, seed=0, tree=None):
        self.request = request
        self.dependencies = dependencies
        self.state = state
        self.seed = seed
        self.tree = tree

    def __getstate__(self):
        return (self.request, self.dependencies, self.state, self.seed, self.tree)

    def __setstate__(self, state):
        self.request, self.dependencies, self.state, self.seed, self.tree = state


class PlanStep:
    """One node serving one request, with the steps it depends on."""

    __slots__ = ("kind", "node", "work", "upstream")

    def __init__(self, kind, node, work, upstream=()):
        self.kind = kind
        self.node = node
        self.work = work
        self.upstream = upstream

    def __repr__(self):
        return f"PlanStep({self.kind.value}, {self.node.name()}, {len(self.upstream)} upstream)"

    def walk(self):
        """Every step of this plan, downstream first."""
        stack = [self]
        while stack:
            step = stack.pop()
            yield step
            stack.extend(step.upstream)


def _uid(node):
    uid = record.uid(node)
    return type(node).__name__ if uid is None else uid


def is_own(node):
    """Whether ``node`` is one of dpowder's (which draw from ``self.rng``
    only); other nodes may use the global generators, as gunpowder's do."""
    return type(node).__module__.startswith("dpowder.")


_is_own = is_own


def uses_global_rng(node):
    """Whether the global generators must be seeded, held and carried
    around ``node``'s code: a node not of dpowder whose code may draw from
    them (``global_rng.draws``); the others run without the lock."""
    return not is_own(node) and global_rng.draws(node)


def apply_seed(node, seed):
    """Seed ``node.rng`` with ``seed`` (the generator is the record's, not
    the node's: nothing is left on the node)."""
    record.seed(node, seed)


def mark_failed(error, node, doing):
    """Remember on ``error`` the node it was raised in (the innermost, the
    first to mark it: its description, which pickles with the error from a
    worker) and add a note naming it."""
    d = getattr(error, "__dict__", None)
    if d is None or "_dp_failed_in" in d:
        return
    d["_dp_failed_in"] = node.describe()
    note = f"dpowder: in {node.describe()}, {doing}"
    if note not in getattr(error, "__notes__", ()):
        error.add_note(note)


def _global_rng(node):
    """Around a node's own code: for a node that may draw from the global
    generators, they are held (and seeded by the caller)."""
    return holding_global_rng() if uses_global_rng(node) else contextlib.nullcontext()


def seed_node(node, request_seed, phase):
    """Seed ``node`` for a request's phase (0: prepare, 1: process)."""
    apply_seed(node, derive_seed(request_seed, _uid(node), phase))


def without_placeholders(request):
    if not any(spec.placeholder for spec in request.values()):
        return request
    request = request.copy()
    request.remove_placeholders()
    return request


# values that ``prepare`` may rebind to the very object they were before
# (True/False, None, small ints, interned strings, constant tuples)
_ATOMS = (type(None), bool, int, float, complex, str, bytes, np.generic)


def _is_atom(value):
    if isinstance(value, tuple):
        return all(isinstance(v, _ATOMS) for v in value)
    return isinstance(value, _ATOMS)


def _state_diff(before, after):
    # atoms always travel (they are tiny): identity cannot tell that prepare
    # rebound one, and without it a later prepare's value would leak into
    # this request's task
    return {
        k: v
        for k, v in after.items()
        if not k.startswith("_dp_") and (k not in before or before[k] is not v or _is_atom(v))
    }


def _remove_provided(node, request):
    for key in node.provided_items:
        if key in request:
            del request[key]


def _is_filter(node):
    # asked of the node, not of its class: the engine imports no node class
    return getattr(node, "_filter_contract", False)


def _kind(node, own_provide=True):
    if not record.upstream(node):
        return SOURCE
    if own_provide and node.runs_on_driver():
        return DRIVER
    if own_provide and node.has_data_dependent_control_flow():
        return INLINE
    if node.plans_upstream():
        return MULTI
    if _is_filter(node):
        return FILTER
    return INLINE


def removes_placeholders(node):
    """Whether ``node``'s ``provide`` gets its requests without placeholders
    (unless it called ``enable_placeholders()``)."""
    return node.__dict__.get("_remove_placeholders", True)


def plan(node, request, stats=None, own_provide=True, global_seed=None):
    """Plan ``request`` to ``node`` and everything upstream of it.

    Returns the root ``PlanStep``. ``prepare`` timings go to ``stats`` (a
    ``ProfilingStats``) when given. With ``own_provide=False`` a node that
    overrides ``provide`` is planned as the filter it derives from (for
    ``super().provide()``). ``global_seed``: the seed gunpowder would have
    given this request (default: its ``random_seed``), for the global
    generators of nodes that are not dpowder's.
    """
    if not isinstance(request, BatchRequest):
        raise InputTypeError(f"{node.describe()}.request_batch expects a BatchRequest, got {type(request).__name__}")
    if global_seed is None:
        global_seed = request.random_seed
    try:
        return _plan(node, request, stats, own_provide, global_seed)
    except Exception as e:
        mark_failed(e, node, f"planning {request!r}")
        raise


def _plan(node, request, stats, own_provide, global_seed):
    node.check_request_consistency(request)
    seed = request.random_seed
    kind = _kind(node, own_provide)

    if kind is SOURCE:
        if removes_placeholders(node):
            request = without_placeholders(request)
        work = Work(request, state={GLOBAL_SEED: global_seed}, seed=derive_seed(seed, _uid(node), 1))
        return PlanStep(SOURCE, node, work)
    if kind is INLINE or kind is DRIVER:
        if kind is INLINE:
            _dry_run_upstream(node, request)
        work = Work(request.copy(), state={GLOBAL_SEED: global_seed}, seed=derive_seed(seed, _uid(node), 1))
        return PlanStep(kind, node, work)
    if kind is FILTER:
        return plan_filter(node, request, stats, global_seed)
    return plan_multi(node, request, stats, global_seed)


def _dry_run_upstream(node, request):
    """A data-dependent filter plans its upstream itself, inside its task;
    plan what it will first ask (the request, less what it provides) on
    copies of its upstream now, so request errors still come before any
    task runs."""
    if not _is_filter(node):
        return
    upstream_request = request.copy()
    _remove_provided(node, upstream_request)
    plan(record.relink(*record.subtree(node.get_upstream_provider())), upstream_request)


def _upstream_global_seeds(node, global_seed, request, wanted):
    """The gunpowder seeds of the requests a multi-upstream node sends: what
    the node says (``global_seeds_upstream``, e.g. MergeProvider's draws),
    else a plain hop from ``global_seed``, or from the sub-request's own
    seed where the node gave it one."""
    answer = getattr(node, "global_seeds_upstream", None)
    if answer is not None:
        return list(answer(global_seed, request, wanted))
    seed = request.random_seed
    return [upstream_global_seed(global_seed if sub.random_seed == seed else sub.random_seed) for _, sub in wanted]


def plan_multi(node, request, stats=None, global_seed=None):
    """Plan a node that asks upstream several requests, decided ahead."""
    seed = request.random_seed
    if global_seed is None:
        global_seed = seed
    upstream = record.upstream(node)
    timing = Timing(node, "prepare")
    timing.start()
    downstream = request.copy()
    before = dict(node.__dict__)
    seed_node(node, seed, 0)
    # as gunpowder's request_batch: a provider (not a filter) gets its
    # request without placeholders, unless it enabled them
    if removes_placeholders(node) and not _is_filter(node):
        request = without_placeholders(request)
    with _global_rng(node):
        if uses_global_rng(node):
            seed_global(global_seed)
        wanted = list(node.plan_upstream(request))
    state = _state_diff(before, node.__dict__)
    timing.stop()
    if stats is not None:
        stats.add(timing)
    steps = []
    global_seeds = _upstream_global_seeds(node, global_seed, request, wanted)
    for (index, sub_request), sub_global_seed in zip(wanted, global_seeds):
        if not 0 <= index < len(upstream):
            raise BatchFilterError(
                f"{node.describe()}.plan_upstream asked upstream provider {index}, but it has {len(upstream)}"
            )
        steps.append(plan(upstream[index], sub_request, stats, global_seed=sub_global_seed))
    downstream.remove_placeholders()
    work = Work(downstream, state=state, seed=derive_seed(seed, _uid(node), 1))
    return PlanStep(MULTI, node, work, tuple(steps))


class Prepared:
    """What the prepare half of a ``BatchFilter`` decided for one request:
    whether it is skipped, its dependencies, the request for upstream (the
    request updated with the dependencies, less what the node provides) and
    the state diff of ``prepare``."""

    __slots__ = ("skipped", "dependencies", "upstream_request", "state")

    def __init__(self, skipped, dependencies, upstream_request, state):
        self.skipped = skipped
        self.dependencies = dependencies
        self.upstream_request = upstream_request
        self.state = state


def prepare_filter(node, request, stats=None, global_seed=None):
    """The prepare half of gunpowder's ``BatchFilter`` contract, for every
    caller (planning, and the driver-side consumers of streams): the node
    seeded, ``skip_node``, ``prepare`` (timed), its dependencies checked,
    the upstream request made."""
    seed = request.random_seed
    if global_seed is None:
        global_seed = seed
    # seeded first: gunpowder nodes draw their ``p`` in skip_node
    seed_node(node, seed, 0)
    with _global_rng(node):
        if uses_global_rng(node):
            seed_global(global_seed)
        if node.skip_node(request):
            upstream_request = request.copy()
            _remove_provided(node, upstream_request)
            return Prepared(True, None, upstream_request, {})
        timing = Timing(node, "prepare")
        timing.start()
        before = dict(node.__dict__)
        dependencies = node.prepare(request)

    # as in gunpowder, ``prepare`` may also shrink or drop items of ``request``
    # itself; what goes upstream is that request updated with the dependencies
    if dependencies is None:
        upstream_request = request.copy()
    elif isinstance(dependencies, BatchRequest):
        upstream_request = request.update_with(dependencies)
        upstream_request._random_seed = seed
    else:
        raise BatchFilterError(
            f"{node.describe()}.prepare returned a {type(dependencies).__name__}; it must return "
            f"a BatchRequest of its dependencies, or None to depend on the whole request"
        )
    _remove_provided(node, upstream_request)
    state = _state_diff(before, node.__dict__)
    timing.stop()
    if stats is not None:
        stats.add(timing)
    return Prepared(False, dependencies, upstream_request, state)


def process_seed(node, request):
    """The seed of a filter's ``process`` for ``request`` (phase 1)."""
    return derive_seed(request.random_seed, _uid(node), 1)


def plan_filter(node, request, stats=None, global_seed=None):
    """Plan one ``BatchFilter`` step: its prepare half (``prepare_filter``),
    then the upstream plan."""
    seed = request.random_seed
    upstream_seed = upstream_global_seed(seed if global_seed is None else global_seed)
    upstream = node.get_upstream_provider()
    downstream = request.copy()
    prepared = prepare_filter(node, request, stats, global_seed)
    if prepared.skipped:
        return plan(upstream, prepared.upstream_request, stats, global_seed=upstream_seed)
    dependencies, state = prepared.dependencies, prepared.state
    upstream_step = plan(upstream, prepared.upstream_request, stats, global_seed=upstream_seed)
    if dependencies is not None:
        dependencies = without_placeholders(dependencies)
    downstream.remove_placeholders()
    work = Work(downstream, dependencies, state, derive_seed(seed, _uid(node), 1))
    return PlanStep(FILTER, node, work, (upstream_step,))
