"""The package imports with gunpowder's top-level names."""

import dpowder as gp


def test_top_level_names():
    for name in [
        "Array", "ArrayKey", "ArrayKeys", "ArraySpec", "Batch", "BatchRequest",
        "BatchProvider", "BatchFilter", "Coordinate", "Roi", "Graph", "GraphKey",
        "GraphKeys", "GraphSpec", "Node", "Edge", "ProviderSpec", "Pipeline", "build",
        "PipelineSetupError", "PipelineRequestError", "BatchRequestError", "BatchFilterError",
    ]:
        assert hasattr(gp, name), name
