"""The build record: what the engine knows about a built pipeline's nodes.

A build (``Pipeline.setup``) is a ``BuildRecord``: its id and the scheduler
its requests use. Each node of it has an ``Entry`` (its build and its uid,
the node's identity for seeding and task keys); each node object has its
upstream links and its random generator. All of it lives here, keyed by the
node object (held weakly), never in the node's ``__dict__``: a node carries
only what its own code set.

Copies: ``copy(node)`` (the engine's per-task shallow copy) shares the
node's entry and links. Pickles (to dask workers, ``copy.deepcopy``) carry
the build id and uid in the pickled state (``state_of``/``restore``), never
the links: the engine ships a subtree as a flat node list plus its
``(index, [children])`` tree and relinks it where it runs (``subtree``,
``relink``), and never the scheduler (on the driver, a deep copy finds its
build's again).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = [
    "BuildRecord",
    "Entry",
    "enter",
    "of",
    "uid",
    "build_id",
    "scheduler",
    "upstream",
    "link",
    "add_upstream",
    "linked_by_hand",
    "seed",
    "rng",
    "copy",
    "state_of",
    "restore",
    "subtree",
    "tree_of",
    "pipeline_tree",
    "relink",
]

# the key of the record's part in a pickled node's state
STATE_KEY = "_dp_record"


class BuildRecord:
    """One build of a pipeline.

    Args:

        build_id (str): Unique per build; part of task and worker-cache keys.

        scheduler (optional): What ``build`` was given: a
            ``distributed.Client``, a dask scheduler name or ``get``, or
            ``None``.
    """

    __slots__ = ("build_id", "scheduler", "__weakref__")

    def __init__(self, build_id: str, scheduler: Any = None) -> None:
        self.build_id = build_id
        self.scheduler = scheduler
        _builds[build_id] = self

    def __repr__(self) -> str:
        return f"BuildRecord({self.build_id!r})"


# the live builds of this process, by id: a node unpickled here (a deep
# copy on the driver) joins its build again, scheduler included
_builds: weakref.WeakValueDictionary[str, BuildRecord] = weakref.WeakValueDictionary()


def _build_named(name: str) -> BuildRecord:
    build = _builds.get(name)
    return build if build is not None else BuildRecord(name)


class Entry:
    """A node's place in a build: the build and the node's uid (its index
    in the build's traversal). Shared by the node's copies."""

    __slots__ = ("build", "uid")

    def __init__(self, build: BuildRecord, uid: str) -> None:
        self.build = build
        self.uid = uid

    def __repr__(self) -> str:
        return f"Entry({self.build.build_id!r}, uid={self.uid!r})"


class _Slot(weakref.ref[Any]):
    """What the record holds for one node object, which it refers to weakly
    (the slot goes when the node does)."""

    __slots__ = ("key", "entry", "upstream", "by_hand", "seed", "rng")
    key: int
    entry: Entry | None
    upstream: Sequence[Any]
    by_hand: bool
    seed: int
    rng: np.random.Generator | None


_slots: dict[int, _Slot] = {}


def _drop(slot: _Slot) -> None:
    # the node is being freed: its id cannot be taken again before this ran
    slots = _slots
    if slots is not None and slots.get(slot.key) is slot:
        slots.pop(slot.key, None)


def _find(node: Any) -> _Slot | None:
    slot = _slots.get(id(node))
    if slot is not None and slot() is node:
        return slot
    return None


def _new_slot(node: Any, entry: Entry | None, links: Sequence[Any], by_hand: bool, value: int) -> _Slot:
    slot = _Slot(node, _drop)
    slot.key = key = id(node)
    slot.entry = entry
    slot.upstream = links
    slot.by_hand = by_hand
    slot.seed = value
    slot.rng = None
    _slots[key] = slot
    return slot


def _slot(node: Any) -> _Slot:
    slot = _find(node)
    return slot if slot is not None else _new_slot(node, None, (), False, 0)


# -- the build ----------------------------------------------------------------


def enter(node: Any, build: BuildRecord, node_uid: str) -> Entry:
    """Make ``node`` part of ``build`` under ``node_uid``; returns its entry."""
    entry = Entry(build, node_uid)
    _slot(node).entry = entry
    return entry


def of(node: Any) -> Entry | None:
    """The entry of ``node`` (or of the node it is a copy of), ``None`` for
    a node never built."""
    slot = _find(node)
    return slot.entry if slot is not None else None


def uid(node: Any) -> str | None:
    """``node``'s uid in its build, ``None`` for a node never built."""
    entry = of(node)
    return entry.uid if entry is not None else None


def build_id(node: Any) -> str | None:
    """The id of ``node``'s build, ``None`` for a node never built."""
    entry = of(node)
    return entry.build.build_id if entry is not None else None


def scheduler(node: Any) -> Any:
    """The scheduler given to the build of ``node``'s pipeline, or ``None``."""
    entry = of(node)
    return entry.build.scheduler if entry is not None else None


# -- links --------------------------------------------------------------------


def upstream(node: Any) -> Sequence[Any]:
    """``node``'s upstream providers, in order (not to be changed in place:
    use ``link``/``add_upstream``)."""
    slot = _find(node)
    return slot.upstream if slot is not None else ()


def link(node: Any, providers: Sequence[Any], by_hand: bool = False) -> None:
    """Make ``providers`` the upstream of ``node``; ``by_hand``: the user did
    (gunpowder's ``add_upstream_provider``), and a build keeps them."""
    slot = _slot(node)
    slot.upstream = list(providers)
    slot.by_hand = by_hand


def add_upstream(node: Any, provider: Any) -> None:
    """Link ``provider`` upstream of ``node``, after those it has (by hand)."""
    slot = _slot(node)
    slot.upstream = [*slot.upstream, provider]
    slot.by_hand = True


def linked_by_hand(node: Any) -> bool:
    """Whether ``node``'s upstream links were made by hand, not by a build."""
    slot = _find(node)
    return slot is not None and slot.by_hand and bool(slot.upstream)


# -- randomness ---------------------------------------------------------------


def seed(node: Any, value: int) -> None:
    """Seed ``node``'s generator (``node.rng``) with ``value``."""
    slot = _slot(node)
    slot.seed = value
    slot.rng = None


def rng(node: Any) -> np.random.Generator:
    """``node``'s generator, made from its seed on first use."""
    slot = _slot(node)
    generator = slot.rng
    if generator is None:
        generator = slot.rng = np.random.default_rng(slot.seed)
    return generator


# -- copies and pickles -------------------------------------------------------


def copy(node: Any, seed: int | None = None) -> Any:
    """A shallow copy of ``node`` (its members shared; for one request's
    state), with the node's entry and links; its own generator, seeded with
    ``seed`` (default: the node's seed)."""
    new = object.__new__(type(node))
    new.__dict__.update(node.__dict__)
    slot = _find(node)
    if slot is not None:
        _new_slot(new, slot.entry, slot.upstream, slot.by_hand, slot.seed if seed is None else seed)
    elif seed is not None:
        _new_slot(new, None, (), False, seed)
    return new


def state_of(node: Any) -> tuple[str, str] | None:
    """What a pickle of ``node`` carries of the record: ``(build id, uid)``,
    ``None`` for a node never built."""
    entry = of(node)
    return (entry.build.build_id, entry.uid) if entry is not None else None


def restore(node: Any, state: tuple[str, str] | None) -> None:
    """Enter an unpickled ``node`` into its build again (``state`` from
    ``state_of``)."""
    if state is not None:
        enter(node, _build_named(state[0]), state[1])


# -- trees: a subtree shipped as a flat list of nodes, relinked where it runs --

Tree = tuple[int, list[Any]]


def tree_of(node: Any, index: Callable[[Any], int]) -> Tree:
    """The nested ``(index(n), [children])`` structure of ``node``'s upstream
    links, ``index`` numbering the nodes."""
    return (index(node), [tree_of(u, index) for u in upstream(node)])


def _numbering() -> tuple[list[Any], Callable[[Any], int]]:
    nodes: list[Any] = []
    index_of: dict[int, int] = {}

    def index(node: Any) -> int:
        found = index_of.get(id(node))
        if found is None:
            found = index_of[id(node)] = len(nodes)
            nodes.append(node)
        return found

    return nodes, index


def subtree(node: Any) -> tuple[list[Any], Tree]:
    """Every node upstream of ``node`` (itself first, each once) and the
    ``(index, [children])`` tree linking them."""
    nodes, index = _numbering()
    return nodes, tree_of(node, index)


def pipeline_tree(pipeline: Any) -> tuple[list[Any], Tree]:
    """``subtree`` from a ``Pipeline``'s structure instead of the record's
    links (for a pipeline a node holds, which travels without links)."""
    nodes, index = _numbering()

    def visit(p: Any) -> Tree:
        return (index(p.output), [visit(c) for c in p.children])

    return nodes, visit(pipeline)


def relink(nodes: Sequence[Any], tree: Tree) -> Any:
    """Copies of ``nodes`` linked as ``tree`` (from ``subtree``); returns
    the root's copy."""
    copies = [copy(n) for n in nodes]

    def visit(t: Tree) -> Any:
        index, children = t
        node = copies[index]
        link(node, [visit(c) for c in children])
        return node

    return visit(tree)
