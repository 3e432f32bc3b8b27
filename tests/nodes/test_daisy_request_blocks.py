"""DaisyRequestBlocks: daisy's blocks and levels, block_done_callback, an
empty request only, and resume: a stopped job run again processes only the
blocks not done yet."""

import numpy as np
import pytest

import dpowder as gp
from dpowder.blockwise import BlockGrid
from dpowder.blockwise.dependency_graph import BlockwiseDependencyGraph
from dpowder.callbacks import ScanCallback
from dpowder.errors import PipelineConfigError
from tests.conftest import coordinate_volume

RAW = gp.ArrayKey("RAW")
OUT = gp.ArrayKey("OUT")
WRITTEN = {}


class Stop(Exception):
    pass


class WriteBlock(gp.BatchFilter):
    """Copies the centre of RAW (its write ROI) into WRITTEN (in-process)."""

    def setup(self):
        self.provides(OUT, self.spec[RAW].copy())

    def prepare(self, request):
        deps = gp.BatchRequest()
        deps[RAW] = request[RAW].copy()
        return deps

    def process(self, batch, request):
        roi = request[OUT].roi
        WRITTEN[tuple(roi.begin)] = WRITTEN.get(tuple(roi.begin), 0) + 1
        batch[OUT] = batch[RAW].crop(roi)


def pipeline(**kwargs):
    data = coordinate_volume((24, 24), np.float32)
    source = gp.ArraySource(RAW, gp.Array(data, gp.ArraySpec(roi=gp.Roi((0, 0), (24, 24)), voxel_size=(1, 1))))
    reference = gp.BatchRequest()
    reference[RAW] = gp.ArraySpec(roi=gp.Roi((0, 0), (8, 8)))
    reference[OUT] = gp.ArraySpec(roi=gp.Roi((2, 2), (4, 4)))
    kwargs.setdefault("progress_callback", ScanCallback())
    return source + WriteBlock() + gp.DaisyRequestBlocks(reference, {RAW: "read_roi", OUT: "write_roi"}, **kwargs)


def test_conflicting_blocks_wait_for_exactly_the_blocks_they_conflict_with_and_write_every_roi_once():
    WRITTEN.clear()
    order = []
    p = pipeline(block_done_callback=lambda block, start, duration: order.append(block))
    with gp.build(p):
        assert len(p.request_batch(gp.BatchRequest())) == 0
    # total write ROI [2:22, 2:22] in 4x4 blocks: 5x5, each written once
    assert sorted(WRITTEN) == sorted((2 + 4 * i, 2 + 4 * j) for i in range(5) for j in range(5))
    assert set(WRITTEN.values()) == {1}
    # daisy's level stride is 8 (context 2 + write 4, rounded up to the write
    # shape): the first level has the blocks at odd grid positions
    grid = BlockGrid(gp.Roi((0, 0), (24, 24)), gp.Roi((0, 0), (8, 8)), gp.Roi((2, 2), (4, 4)))
    assert grid.level_sizes == [4, 6, 6, 9]
    assert order[0].write_roi == gp.Roi((6, 6), (4, 4))
    # every block ran after each block whose write ROI it reads (daisy's
    # dependencies): per-block edges, not level barriers
    graph = BlockwiseDependencyGraph("task", gp.Roi((0, 0), (8, 8)), gp.Roi((2, 2), (4, 4)), True, "valid", total_read_roi=gp.Roi((0, 0), (24, 24)))
    finished = {b.block_id[1]: k for k, b in enumerate(order)}
    for block in order:
        for upstream in graph.upstream(block):
            assert block.read_roi.intersects(upstream.write_roi)
            assert finished[upstream.block_id[1]] < finished[block.block_id[1]]


def test_fit_modes_give_daisys_block_counts():
    total, read, write = gp.Roi((0,), (23,)), gp.Roi((0,), (8,)), gp.Roi((2,), (4,))
    assert BlockGrid(total, read, write, fit="valid").num_blocks == 4  # write ROIs up to 18
    overhang = BlockGrid(total, read, write, fit="overhang")
    # write ROIs start at 2, 6, 10, 14, 18; the last leaves the total write ROI [2:21]
    assert overhang.num_blocks == 5 and overhang.block(overhang.num_blocks - 1).write_roi == gp.Roi((18,), (4,))
    shrink = BlockGrid(total, read, write, read_write_conflict=False, fit="shrink")
    assert [shrink.block(i).write_roi for i in range(shrink.num_blocks)][-1] == gp.Roi((18,), (3,))


def test_non_empty_request_fails_naming_the_node():
    with gp.build(pipeline()) as p:
        with pytest.raises(gp.BatchRequestError, match=r"DaisyRequestBlocks \(created at .*must be empty"):
            p.request_batch(gp.BatchRequest({RAW: gp.ArraySpec(roi=gp.Roi((0, 0), (8, 8)))}))


def test_roi_map_must_map_every_reference_key():
    reference = gp.BatchRequest({RAW: gp.ArraySpec(roi=gp.Roi((0, 0), (8, 8)))})
    with pytest.raises(PipelineConfigError, match="roi_map maps RAW to None"):
        gp.DaisyRequestBlocks(reference, {})


def test_stopped_job_run_again_processes_only_the_remaining_blocks(tmp_path):
    WRITTEN.clear()
    markers = str(tmp_path / "done")
    first = []

    def stop_after_ten(block, start, duration):
        first.append(block.block_id)
        if len(first) == 10:
            raise Stop()

    with gp.build(pipeline(done_marker_dir=markers, block_done_callback=stop_after_ten)) as p:
        with pytest.raises(Stop):
            p.request_batch(gp.BatchRequest())
    # the ten reported, and the blocks already submitted when the callback
    # stopped the job (they finished and were marked done)
    done_first = len(WRITTEN)
    assert 10 <= done_first < 25
    second = []
    with gp.build(pipeline(done_marker_dir=markers, block_done_callback=lambda b, s, d: second.append(b.block_id))) as p:
        p.request_batch(gp.BatchRequest())
    assert len(second) == 25 - done_first and not set(first) & set(second)
    assert len(WRITTEN) == 25 and set(WRITTEN.values()) == {1}


def test_check_function_skips_blocks_already_done():
    WRITTEN.clear()
    p = pipeline(check_function=lambda block: block.write_roi.begin[0] < 10, read_write_conflict=False)
    with gp.build(p):
        p.request_batch(gp.BatchRequest())
    assert sorted({begin[0] for begin in WRITTEN}) == [10, 14, 18]


def test_inside_a_daisy_worker_it_processes_the_blocks_its_worker_is_handed():
    """Two thread workers of a dpowder.blockwise task each run the whole
    pipeline; DaisyRequestBlocks takes that worker's blocks from the Client
    instead of tiling the volume: together they write every block once."""
    import threading

    import dpowder.blockwise as daisy

    WRITTEN.clear()
    lock = threading.Lock()
    done = []

    def on_done(block, start, duration):
        with lock:
            done.append(block.block_id)

    def worker():
        p = pipeline(block_done_callback=on_done)
        with gp.build(p):
            p.request_batch(gp.BatchRequest())

    task = daisy.Task("drb", gp.Roi((0, 0), (24, 24)), gp.Roi((0, 0), (8, 8)), gp.Roi((2, 2), (4, 4)), worker, num_workers=2)
    assert daisy.run_blockwise([task], scheduler="threads", progress=False)
    assert sorted(WRITTEN) == sorted((2 + 4 * i, 2 + 4 * j) for i in range(5) for j in range(5))
    assert set(WRITTEN.values()) == {1}
    grid = task.grid()
    assert sorted(done) == sorted(("drb", grid.block_id_of(i)) for i in range(grid.num_blocks))


def test_inside_a_real_daisy_worker_it_uses_daisys_client(monkeypatch):
    """A DAISY_CONTEXT that dpowder's servers did not make (no
    ``server=dpowder``) is real daisy's: with ``daisy`` importable the node
    takes its blocks from ``daisy.Client()`` (here a stand-in module)."""
    import contextlib
    import sys
    import types

    import dpowder.blockwise as dp_daisy

    total = gp.Roi((0, 0), (24, 24))
    handed = [
        dp_daisy.Block(total, gp.Roi((4, 8), (8, 8)), gp.Roi((6, 10), (4, 4)), task_id="real"),
        dp_daisy.Block(total, gp.Roi((12, 0), (8, 8)), gp.Roi((14, 2), (4, 4)), task_id="real"),
    ]
    released = []

    class Client:
        def __init__(self):
            self.blocks = list(handed)

        @contextlib.contextmanager
        def acquire_block(self):
            block = self.blocks.pop(0) if self.blocks else None
            yield block
            if block is not None:
                released.append(block.block_id)

    monkeypatch.setitem(sys.modules, "daisy", types.SimpleNamespace(Client=Client))
    monkeypatch.setenv("DAISY_CONTEXT", "hostname=node7:port=4242:task_id=real:worker_id=0")
    WRITTEN.clear()
    with gp.build(pipeline()) as p:
        p.request_batch(gp.BatchRequest())
    assert WRITTEN == {(6, 10): 1, (14, 2): 1}
    assert released == [b.block_id for b in handed]


def test_to_dask_refuses_a_non_empty_request_and_a_daisy_worker_naming_the_node(monkeypatch):
    import sys
    import types

    with gp.build(pipeline()) as p:
        with pytest.raises(gp.BatchRequestError, match=r"DaisyRequestBlocks \(created at .*must be empty"):
            p.to_dask(gp.BatchRequest({RAW: gp.ArraySpec(roi=gp.Roi((0, 0), (8, 8)))}))
    # inside a (real) daisy worker the node takes the blocks it is handed,
    # one by one: there is no graph of them to return
    monkeypatch.setitem(sys.modules, "daisy", types.SimpleNamespace(Client=lambda: object()))
    monkeypatch.setenv("DAISY_CONTEXT", "hostname=node7:port=4242:task_id=real:worker_id=0")
    with gp.build(pipeline()) as p:
        with pytest.raises(gp.PipelineRequestError, match=r"DaisyRequestBlocks \(created at .*inside a daisy worker"):
            p.to_dask(gp.BatchRequest())
