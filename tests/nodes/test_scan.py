"""Scan: gunpowder's tiling (stride, snapped last shift, several keys and
voxel sizes, graphs), stitched dask results equal to the volume, empty
requests that return nothing, plan-time errors naming node and key."""

import numpy as np
import pytest

import dpowder as gp
from dpowder.callbacks import ScanCallback
from tests.conftest import coordinate_volume

RAW = gp.ArrayKey("RAW")
LABELS = gp.ArrayKey("LABELS")
POINTS = gp.GraphKey("POINTS")
SEEN = []


class Record(gp.BatchFilter):
    """Records the ROI of every block of RAW it passes (in-process runs)."""

    def process(self, batch, request):
        SEEN.append(batch[RAW].spec.roi)


class Quiet(ScanCallback):
    def __init__(self):
        self.calls = []

    def start(self, num_total):
        self.calls.append(("start", num_total))

    def update(self, num_processed):
        self.calls.append(("update", num_processed))

    def stop(self):
        self.calls.append(("stop",))


def raw_source(shape=(10, 12, 14), voxel_size=(2, 2, 2), offset=(0, 0, 0)):
    data = coordinate_volume(shape, np.float32)
    roi = gp.Roi(offset, gp.Coordinate(shape) * gp.Coordinate(voxel_size))
    return data, gp.ArraySource(RAW, gp.Array(data, gp.ArraySpec(roi=roi, voxel_size=voxel_size)))


def reference(shape, key=RAW):
    ref = gp.BatchRequest()
    ref[key] = gp.ArraySpec(roi=gp.Roi((0,) * len(shape), shape))
    return ref


def test_empty_request_scans_whole_volume_with_last_shift_snapped_and_returns_nothing():
    SEEN.clear()
    _, source = raw_source()  # world shape (20, 24, 28)
    pipeline = source + Record() + gp.Scan(reference((8, 8, 8)), progress_callback=Quiet())
    with gp.build(pipeline):
        batch = pipeline.request_batch(gp.BatchRequest())
    assert len(batch) == 0
    # per axis: shifts 0, 8, then snapped to the last valid shift (20-8, 24-8, 28-8)
    expected_z, expected_y, expected_x = [0, 8, 12], [0, 8, 16], [0, 8, 16, 20]
    expected = [
        gp.Roi((z, y, x), (8, 8, 8)) for x in expected_x for y in expected_y for z in expected_z
    ]  # the first axis varies fastest, as in gunpowder
    assert SEEN == expected


def test_non_empty_request_is_stitched_into_a_numpy_array_equal_to_the_volume():
    data, source = raw_source()
    pipeline = source + gp.Scan(reference((8, 8, 8)), progress_callback=Quiet())
    request = gp.BatchRequest({RAW: gp.ArraySpec(roi=gp.Roi((2, 0, 4), (18, 24, 20)))})
    with gp.build(pipeline):
        batch = pipeline.request_batch(request)
    # gunpowder's Scan returns the data itself, valid after the build
    assert isinstance(batch[RAW].data, np.ndarray)
    assert batch[RAW].spec.roi == gp.Roi((2, 0, 4), (18, 24, 20))
    # blocks at z = 2, 10, 12 (snapped): pieces [2,10) [10,12) [12,20) in world units,
    # the later block winning where blocks overlap
    np.testing.assert_array_equal(batch[RAW].data, data[1:10, 0:12, 2:12])


def test_keys_with_different_voxel_sizes_and_context_are_stitched_exactly():
    data, source = raw_source(shape=(20, 24), voxel_size=(1, 1), offset=(0, 0))
    labels = coordinate_volume((10, 12), np.int32)
    label_source = gp.ArraySource(LABELS, gp.Array(labels, gp.ArraySpec(roi=gp.Roi((0, 0), (20, 24)), voxel_size=(2, 2))))
    ref = gp.BatchRequest()
    ref[RAW] = gp.ArraySpec(roi=gp.Roi((0, 0), (8, 8)))  # raw with 2 of context each side
    ref[LABELS] = gp.ArraySpec(roi=gp.Roi((2, 2), (4, 4)))
    pipeline = (source, label_source) + gp.MergeProvider() + gp.Scan(ref, progress_callback=Quiet())
    request = gp.BatchRequest()
    request[RAW] = gp.ArraySpec(roi=gp.Roi((0, 0), (20, 24)))
    request[LABELS] = gp.ArraySpec(roi=gp.Roi((2, 2), (16, 20)))
    with gp.build(pipeline):
        batch = pipeline.request_batch(request)
    np.testing.assert_array_equal(np.asarray(batch[LABELS].data), labels[1:9, 1:11])
    np.testing.assert_array_equal(np.asarray(batch[RAW].data), data)
    assert batch[LABELS].spec.voxel_size == gp.Coordinate((2, 2))


def test_graphs_are_stitched_from_every_block_without_duplicates():
    _, source = raw_source(shape=(20, 20), voxel_size=(1, 1), offset=(0, 0))
    nodes = [gp.Node(i, np.array(loc, dtype=float)) for i, loc in enumerate([(1, 1), (5, 15), (12, 3), (19, 19)])]
    edges = [gp.Edge(0, 1)]
    graph = gp.Graph(nodes, edges, gp.GraphSpec(roi=gp.Roi((0, 0), (20, 20))))
    pipeline = (source, gp.GPGraphSource(POINTS, graph)) + gp.MergeProvider()
    ref = reference((8, 8))
    ref[POINTS] = gp.GraphSpec(roi=gp.Roi((0, 0), (8, 8)))
    request = gp.BatchRequest({RAW: gp.ArraySpec(roi=gp.Roi((0, 0), (20, 20))), POINTS: gp.GraphSpec(roi=gp.Roi((0, 0), (20, 20)))})
    pipeline = pipeline + gp.Scan(ref, progress_callback=Quiet())
    with gp.build(pipeline):
        batch = pipeline.request_batch(request)
    located = {n.id: tuple(n.location) for n in batch[POINTS].nodes}
    assert located == {0: (1.0, 1.0), 1: (5.0, 15.0), 2: (12.0, 3.0), 3: (19.0, 19.0)}


def test_stitched_result_on_a_cluster_equals_in_process(cluster_client):
    data, source = raw_source()
    pipeline = source + gp.Scan(reference((8, 8, 8)), progress_callback=Quiet())
    request = gp.BatchRequest({RAW: gp.ArraySpec(roi=gp.Roi((0, 0, 0), (20, 24, 28)))})
    with gp.build(pipeline, scheduler=cluster_client):
        batch = pipeline.request_batch(request)
    # gathered from the workers: the blocks' results there may go
    cluster_client.run(lambda: None)
    assert isinstance(batch[RAW].data, np.ndarray)
    np.testing.assert_array_equal(batch[RAW].data, data)


def test_progress_callback_sees_start_cumulative_updates_and_stop():
    _, source = raw_source()
    callback = Quiet()
    pipeline = source + gp.Scan(reference((8, 8, 8)), progress_callback=callback)
    with gp.build(pipeline):
        pipeline.request_batch(gp.BatchRequest())
    assert callback.calls[0] == ("start", 36)
    assert callback.calls[-1] == ("stop",)
    updates = [c[1] for c in callback.calls if c[0] == "update"]
    assert updates == sorted(updates) and updates[-1] == 36


def test_reference_larger_than_volume_fails_naming_node_and_key():
    _, source = raw_source()
    pipeline = source + gp.Scan(reference((8, 8, 40)), progress_callback=Quiet())
    with gp.build(pipeline):
        with pytest.raises(gp.BatchRequestError, match=r"Scan \(created at .*test_scan.py.*RAW.*does not fit"):
            pipeline.request_batch(gp.BatchRequest())


def test_request_for_key_outside_reference_fails():
    _, source = raw_source()
    label_source = gp.ArraySource(LABELS, gp.Array(np.zeros((10, 12, 14), np.uint8), gp.ArraySpec(gp.Roi((0, 0, 0), (20, 24, 28)), (2, 2, 2))))
    pipeline = (source, label_source) + gp.MergeProvider() + gp.Scan(reference((8, 8, 8)), progress_callback=Quiet())
    with gp.build(pipeline):
        with pytest.raises(gp.BatchRequestError, match="LABELS.*not in its reference"):
            pipeline.request_batch(gp.BatchRequest({LABELS: gp.ArraySpec(roi=gp.Roi((0, 0, 0), (8, 8, 8)))}))
