"""The shared ``NodeContract`` (tests/contract.py) for nodes whose own test
files check their known answers: same seed -> same batch under sync,
threads and a LocalCluster; the node pickles small; bad requests fail at
plan time."""

import os
import shutil
import tempfile

import numpy as np
import pytest
import zarr

import dpowder as gp
from tests.contract import NodeContract

RAW = gp.ArrayKey("CONTRACT_RAW")
LABELS = gp.ArrayKey("CONTRACT_LABELS")
BINARY = gp.ArrayKey("CONTRACT_BINARY")
DERIVED = gp.ArrayKey("CONTRACT_DERIVED")
MASK = gp.ArrayKey("CONTRACT_MASK")

VOXEL = gp.Coordinate(2, 1, 1)
SHAPE = (8, 16, 16)
ROI = gp.Roi((0, 0, 0), gp.Coordinate(SHAPE) * VOXEL)


def labels_data():
    z, y, x = np.indices(SHAPE)
    return (1 + (y // 5) * 4 + (x // 5)).astype(np.uint64)


def sources():
    rng = np.random.default_rng(0)
    raw = gp.ArraySource(RAW, gp.Array(rng.random(SHAPE, dtype=np.float32), gp.ArraySpec(ROI, VOXEL)))
    labels = gp.ArraySource(LABELS, gp.Array(labels_data(), gp.ArraySpec(ROI, VOXEL)))
    binary = gp.ArraySource(BINARY, gp.Array((labels_data() % 2).astype(np.uint8), gp.ArraySpec(ROI, VOXEL, interpolatable=False)))
    return (raw, labels, binary) + gp.MergeProvider()


def request(*specs):
    r = gp.BatchRequest()
    for key, roi in specs:
        r[key] = gp.ArraySpec(roi)
    return r


INNER = gp.Roi((4, 4, 4), (8, 8, 8))
OUTSIDE = gp.Roi((12, 12, 12), (8, 8, 8))


class TestDownSampleContract(NodeContract):
    def make_pipeline(self):
        return sources() + gp.DownSample(LABELS, 2, DERIVED), request((DERIVED, INNER))

    def bad_requests(self):
        return [(request((DERIVED, OUTSIDE)), "outside what it provides")]


class TestUpSampleContract(NodeContract):
    def make_pipeline(self):
        return sources() + gp.UpSample(LABELS, (2, 1, 1), DERIVED), request((DERIVED, INNER))


class TestResampleContract(NodeContract):
    def make_pipeline(self):
        return sources() + gp.Resample(RAW, (4, 2, 2), DERIVED), request((DERIVED, INNER))


class TestAsTypeContract(NodeContract):
    def make_pipeline(self):
        return sources() + gp.AsType(RAW, np.float64, DERIVED), request((DERIVED, INNER))


class TestBalanceLabelsContract(NodeContract):
    def make_pipeline(self):
        return sources() + gp.BalanceLabels(BINARY, DERIVED), request((BINARY, INNER), (DERIVED, INNER))


class TestExcludeLabelsContract(NodeContract):
    def make_pipeline(self):
        node = gp.ExcludeLabels(LABELS, [1, 6], ignore_mask=MASK, ignore_mask_erode=2)
        return sources() + node, request((LABELS, INNER), (MASK, INNER))


class TestGrowBoundaryContract(NodeContract):
    def make_pipeline(self):
        return sources() + gp.GrowBoundary(LABELS, steps=1), request((LABELS, INNER))


class TestRenumberConnectedComponentsContract(NodeContract):
    def make_pipeline(self):
        return sources() + gp.RenumberConnectedComponents(LABELS), request((LABELS, INNER))


class TestCropContract(NodeContract):
    def make_pipeline(self):
        return sources() + gp.Crop(RAW, gp.Roi((2, 2, 2), (12, 12, 12))), request((RAW, INNER))

    def bad_requests(self):
        return [(request((RAW, gp.Roi((0, 0, 0), (4, 4, 4)))), "outside what it provides")]


_ZARR = None


@pytest.fixture(scope="module", autouse=True)
def _remove_the_zarr_container():
    """The container ``zarr_container`` made goes with this module's tests
    (it used to stay in the temporary directory, one per run)."""
    global _ZARR
    yield
    if _ZARR is not None:
        shutil.rmtree(os.path.dirname(_ZARR), ignore_errors=True)
        _ZARR = None


def zarr_container():
    global _ZARR
    if _ZARR is None:
        path = tempfile.mkdtemp(prefix="dpowder-contract-") + "/c.zarr"
        array = zarr.open_group(path, mode="w").create_array("raw", shape=SHAPE, chunks=(4, 8, 8), dtype=np.uint64)
        array[:] = labels_data()
        array.attrs.update(resolution=list(VOXEL), offset=[0, 0, 0])
        _ZARR = path
    return _ZARR


class TestZarrSourceContract(NodeContract):
    def make_pipeline(self):
        return gp.Pipeline(gp.ZarrSource(zarr_container(), {LABELS: "raw"})), request((LABELS, INNER))

    def bad_requests(self):
        return [
            (request((LABELS, OUTSIDE)), "outside what it provides"),
            (request((LABELS, gp.Roi((1, 0, 0), (2, 2, 2)))), "not a multiple"),
        ]
