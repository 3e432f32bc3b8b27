"""gunpowder.contrib's legacy nodes: importable and constructible with
gunpowder's signatures; using one raises RemovedAPIError (a
PipelineSetupError) naming the node, the removed API and what to use."""

import pytest

import dpowder as gp
from dpowder.contrib import RemovedAPIError

A = gp.ArrayKey("A")
B = gp.ArrayKey("B")
RAW = gp.ArrayKey("RAW")

LEGACY = {
    "AddBlobsFromPoints": (dict(blob_settings={}), "RasterizeGraph"),
    "AddGtMaskExclusiveZone": (
        dict(EZ_masks_to_binary_map={A: B}, gaussian_sigma_for_zone=1, rasterization_setting=None),
        "enlarge_binary_map",
    ),
    "AddNonsymmetricAffinities": (
        dict(
            affinity_vectors=[(1, 0, 0)], array_key_1=A, array_key_2=B, affinity_array_key_1=A, affinity_array_key_2=B
        ),
        "AddAffinities",
    ),
    "DvidPartnerAnnotationSource": (dict(hostname="h", port=8000, uuid="u", datasets=None, rois=None), "GPGraphSource"),
    "Hdf5PointsSource": (dict(filename="f.hdf", datasets={}, rois={}), "GPGraphSource"),
    "ZeroOutConstSections": (dict(intensities=RAW), "BatchFilter of your own"),
}


def raw_source():
    import numpy as np

    return gp.ArraySource(RAW, gp.Array(np.zeros((2, 2), np.float32), gp.ArraySpec(gp.Roi((0, 0), (2, 2)), (1, 1))))


@pytest.mark.parametrize("name", sorted(LEGACY))
def test_constructible_and_using_raises_a_clear_error(name):
    cls = getattr(gp.contrib, name)
    assert getattr(gp.contrib.nodes, name) is cls
    kwargs, instead = LEGACY[name]
    node = cls(**kwargs)
    assert all(getattr(node, k) is v for k, v in kwargs.items())
    pipeline = raw_source() + node if isinstance(node, gp.BatchFilter) else node
    with pytest.raises(RemovedAPIError) as info:
        with gp.build(pipeline):
            pass
    message = str(info.value)
    assert f"contrib node {name} needs" in message and "gunpowder removed" in message and instead in message
    assert isinstance(info.value, gp.PipelineSetupError) and isinstance(info.value, NotImplementedError)
    with pytest.raises(RemovedAPIError):
        node.process(None, None) if isinstance(node, gp.BatchFilter) else node.provide(None)


def test_positional_arguments_as_in_gunpowder():
    node = gp.contrib.AddNonsymmetricAffinities([(0, 1, 0)], A, B, A, B)
    assert node.affinity_vectors == [(0, 1, 0)] and node.affinity_array_key_2 is B
    assert gp.contrib.DvidPartnerAnnotationSource("host", 1, "uuid").rois is None
