"""dpowder: gunpowder's API on a dask engine.

``import dpowder as gp`` runs a gunpowder pipeline unchanged; requests are
planned on the driver and lowered into dask task graphs.
"""

from . import graph, jax, nodes, pipeline, profiling, tensorflow, torch
from . import contrib, morphology  # gunpowder.contrib, gunpowder.morphology (scipy imported on use)
from .array import Array, ArrayKey, ArrayKeys
from .array_spec import ArraySpec
from .batch import Batch
from .batch_request import BatchRequest
from .coordinate import Coordinate
from .errors import (
    BatchFilterError,
    BatchRequestError,
    ArgumentError,
    BlockwiseError,
    DataError,
    DataSourceError,
    DpowderError,
    InputTypeError,
    PipelineConfigError,
    PipelineRequestError,
    PipelineSetupError,
    PipelineTeardownError,
)
from .checkpoints import UntrustedCheckpointError
from .graph import Edge, Graph, GraphKey, GraphKeys, Node
from .graph_spec import GraphSpec
from .nodes import *  # noqa: F401,F403 -- the node names, as gunpowder exports them
from .pipeline import Pipeline, build, to_xarray
from .producer_pool import ProducerPool
from .provider_spec import ProviderSpec
from .roi import Roi
from . import ext, producer_pool  # noqa: E402 -- gp.ext and gp.producer_pool, as in gunpowder

__version__ = "0.1.0"
