"""gunpowder's ``contrib``: contributed nodes, as ``gp.contrib.X`` and
``gp.contrib.nodes.X``. Heavy dependencies (scipy) are imported when a node
runs, not here."""

from . import nodes
from .nodes import *  # noqa: F401,F403 -- the node names, as gunpowder exports them
from .nodes import __all__
