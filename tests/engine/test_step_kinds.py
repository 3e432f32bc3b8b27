"""Plan steps have one kind each (``plan.StepKind``), and one table
(``tasks.RUNS``) says how every kind runs, in a dask graph and in this
process: lowering (per node and fused) and in-process execution give the
same batch. A step that runs in the calling process (``Scan``) cannot be
lowered into a task, and saying so names the node."""

import dask
import numpy as np
import pytest

import dpowder as gp
from dpowder.engine import tasks
from dpowder.engine.execute import execute_local, lower
from dpowder.engine.plan import StepKind, plan

RAW = gp.ArrayKey("STEP_KINDS_RAW")


def source():
    data = np.arange(64, dtype=np.float32).reshape(8, 8)
    return gp.ArraySource(RAW, gp.Array(data, gp.ArraySpec(gp.Roi((0, 0), (8, 8)), voxel_size=(1, 1))))


def request(roi=gp.Roi((2, 2), (4, 4))):
    return gp.BatchRequest({RAW: gp.ArraySpec(roi)}, random_seed=3)


def test_every_kind_has_one_run_and_only_driver_steps_stay_out_of_tasks():
    assert set(tasks.RUNS) == set(StepKind)
    assert [k for k, run in tasks.RUNS.items() if run.in_task is None] == [StepKind.DRIVER]
    assert [k for k, run in tasks.RUNS.items() if run.subtree] == [StepKind.INLINE]
    assert [k.value for k in StepKind] == ["source", "filter", "multi", "inline", "driver"]


@pytest.mark.parametrize("fuse", [False, True])
def test_lowered_and_in_process_runs_give_the_same_batch(fuse):
    pipeline = source() + gp.Normalize(RAW, factor=0.5) + gp.Stack(2)
    with gp.build(pipeline, scheduler="sync") as p:
        root = plan(p.output, request())
        kinds = [s.kind for s in root.walk()]
        assert kinds == [StepKind.MULTI, StepKind.FILTER, StepKind.SOURCE, StepKind.FILTER, StepKind.SOURCE]
        here = execute_local(root)
        graph, key = lower(plan(p.output, request()), fuse=fuse)
        lowered = dask.get(graph, key)
    expected = np.arange(64, dtype=np.float32).reshape(8, 8)[2:6, 2:6] * 0.5
    for batch in (here, lowered):
        np.testing.assert_array_equal(batch[RAW].data, np.stack([expected, expected]))


@pytest.mark.parametrize("fuse", [False, True])
def test_a_driver_step_cannot_be_lowered_and_the_error_names_the_node(fuse):
    scan = gp.Scan(gp.BatchRequest({RAW: gp.ArraySpec(gp.Roi((0, 0), (2, 2)))}))
    with gp.build(source() + scan) as p:
        root = plan(p.output, request())
        assert root.kind is StepKind.DRIVER
        with pytest.raises(
            gp.PipelineRequestError, match=r"Scan \(created at .*test_step_kinds.py:\d+\): a driver step"
        ):
            lower(root, fuse=fuse)
