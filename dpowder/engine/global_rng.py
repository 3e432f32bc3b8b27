"""Which nodes may draw from the global random generators.

gunpowder seeds the global ``random`` and ``np.random`` before every
``provide`` and lets a ``process`` continue from the state its upstream left
(see ``plan`` and ``tasks``). dpowder does the same for nodes that are not
its own, and that costs: the generators are process-wide, so such a node's
code runs holding ``plan.GLOBAL_RNG_LOCK`` (one node at a time in a
process, whatever the number of threads), and seeding and capturing their
state costs ~50 us a task.

A node that never touches the global generators needs none of it. This
module tells, from the code of the node's class, whether it may: every
function of the class and of its non-dpowder bases is read (nested code,
closures, and the functions of the same module it calls), and a node is
taken to draw if any of them names ``random`` (``random.x``,
``np.random.x``, ``getattr(np, "random")``) or uses a global bound to the
``random``/``numpy.random`` modules or their global generators
(``from numpy.random import uniform``). It errs on the side of drawing:
code it cannot read (a C extension, a callable object) counts as drawing.
Calls into other libraries are not followed; libraries that draw from the
global generators where a node would call them are rare, and a node doing
so is still seeded when its own code names ``random`` (seeding it
explicitly, as gunpowder's nodes do, counts).
"""

import random
import types
import weakref

import numpy as np

# the objects whose use means drawing from (or seeding) the global generators
_GLOBAL_MODULES = (random, np.random)
_GLOBAL_GENERATORS = (random._inst, np.random.mtrand._rand)

# names that mean the global generators wherever they appear in code
_RANDOM_NAMES = frozenset({"random"})


def _is_global_rng(value: object) -> bool:
    if any(value is m for m in _GLOBAL_MODULES):
        return True
    owner = getattr(value, "__self__", None)
    if owner is not None and any(owner is g for g in _GLOBAL_GENERATORS):
        return True
    if any(owner is m for m in _GLOBAL_MODULES):
        return True
    module = getattr(value, "__module__", None)
    return isinstance(value, types.FunctionType) and module in ("random", "numpy.random")


def _functions_of(cls: type):
    for value in vars(cls).values():
        if isinstance(value, (staticmethod, classmethod)):
            value = value.__func__
        if isinstance(value, property):
            yield from (f for f in (value.fget, value.fset, value.fdel) if f is not None)
        elif isinstance(value, types.FunctionType):
            yield value


def _code_draws(code: types.CodeType, function: types.FunctionType, seen: set) -> bool:
    """Whether ``code`` (of ``function``, or nested in it) may touch the
    global generators, following the functions of ``function``'s module it
    names."""
    if _RANDOM_NAMES & set(code.co_names) or _RANDOM_NAMES & set(code.co_varnames):
        return True
    globals_ = function.__globals__
    for name in code.co_names:
        value = globals_.get(name)
        if value is None:
            continue
        if _is_global_rng(value):
            return True
        if isinstance(value, types.FunctionType) and value.__module__ == function.__module__:
            if _function_draws(value, seen):
                return True
    for const in code.co_consts:
        if isinstance(const, str) and const in _RANDOM_NAMES:
            return True
        if isinstance(const, types.CodeType) and _code_draws(const, function, seen):
            return True
    for cell in function.__closure__ or ():
        try:
            value = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        if _is_global_rng(value):
            return True
        if isinstance(value, types.FunctionType) and _function_draws(value, seen):
            return True
    return False


def _function_draws(function: types.FunctionType, seen: set) -> bool:
    if id(function) in seen:
        return False
    seen.add(id(function))
    return _code_draws(function.__code__, function, seen)


# per class (classes are few; held weakly so that classes made in a loop go)
_drawing: "weakref.WeakKeyDictionary[type, bool]" = weakref.WeakKeyDictionary()


def class_draws(cls: type) -> bool:
    """Whether nodes of class ``cls`` may draw from the global ``random`` or
    ``np.random`` (the code of ``cls`` and its bases that are not dpowder's
    own; dpowder's nodes draw from ``self.rng`` only)."""
    known = _drawing.get(cls)
    if known is None:
        known = _drawing[cls] = _class_draws(cls)
    return known


def _class_draws(cls: type) -> bool:
    seen: set = set()
    for base in cls.__mro__:
        if base is object or base.__module__.startswith("dpowder.") or base.__module__ == "dpowder":
            continue
        for function in _functions_of(base):
            if _function_draws(function, seen):
                return True
        if "__getattr__" in vars(base) or "__getattribute__" in vars(base):
            return True  # attributes made at run time: cannot tell
    return False


def draws(node: object) -> bool:
    """Whether ``node`` may draw from the global generators, so that they
    must be seeded, held and carried around its code (``class_draws``)."""
    return class_draws(type(node))
