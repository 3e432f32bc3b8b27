"""``Scheduler``: blocks come out only once their upstream blocks
succeeded (per-block dependencies, daisy's order), a failed block goes out
again until its retries are spent, then counts as failed and orphans what
waits for it; ``check_function`` skips blocks at acquire time."""

import dpowder.blockwise as daisy
from dpowder.blockwise import BlockStatus, Roi, Scheduler


def task_1d(**kwargs):
    # daisy's test_scheduler.py 1D task: blocks 1 and 2, block 2 first
    return daisy.Task("test_1d", Roi((0,), (4,)), Roi((0,), (3,)), Roi((1,), (1,)), lambda b: None, **kwargs)


def task_2d():
    return daisy.Task("test_2d", Roi((0, 0), (6, 6)), Roi((0, 0), (3, 3)), Roi((1, 1), (1, 1)), lambda b: None)


def release(scheduler, block, status=BlockStatus.SUCCESS):
    block.status = status
    return scheduler.release_block(block)


def test_acquire_and_release_in_daisys_order():
    scheduler = Scheduler([task_1d()])
    block = scheduler.acquire_block("test_1d")
    assert block.block_id == ("test_1d", 2)
    assert (block.read_roi, block.write_roi) == (Roi((1,), (3,)), Roi((2,), (1,)))
    # block 1 reads what block 2 writes: not before block 2 is done
    assert scheduler.acquire_block("test_1d") is None
    state = scheduler.task_states["test_1d"]
    assert (state.ready_count, state.processing_count, state.pending_count) == (0, 1, 1)
    release(scheduler, block)
    block = scheduler.acquire_block("test_1d")
    assert block.block_id == ("test_1d", 1) and block.write_roi == Roi((1,), (1,))
    release(scheduler, block)
    assert state.completed_count == 2 and state.is_done()


def test_2d_levels_come_out_in_daisys_order():
    scheduler = Scheduler([task_2d()])
    for level in ((12, 23, 25, 40), (8, 17, 19, 32), (7, 16, 18, 31), (4, 11, 13, 24)):
        blocks = [scheduler.acquire_block("test_2d") for _ in level]
        assert [b.block_id[1] for b in blocks] == list(level)
        assert scheduler.acquire_block("test_2d") is None
        for block in blocks:
            release(scheduler, block)
    assert scheduler.task_states["test_2d"].completed_count == 16


def test_a_block_becomes_ready_once_all_its_upstream_blocks_succeeded():
    scheduler = Scheduler([task_2d()])
    roots = {b.block_id[1]: b for b in (scheduler.acquire_block("test_2d") for _ in range(4))}
    # 17 (level 1) depends on 12 and 23; 8 only on 12
    release(scheduler, roots[12])
    assert scheduler.acquire_block("test_2d").block_id[1] == 8
    assert scheduler.acquire_block("test_2d") is None
    release(scheduler, roots[23])
    assert scheduler.acquire_block("test_2d").block_id[1] == 17


def test_failed_block_is_retried_then_failed_and_its_downstream_orphaned():
    # 1D, write 1, context 2: ids 2..9, levels {4, 7} {3, 6, 9} {2, 5, 8};
    # 4 is upstream of 3 and 6, which are upstream of 2 and 5, 6 of 8
    task = daisy.Task("t", Roi((0,), (12,)), Roi((0,), (5,)), Roi((2,), (1,)), lambda b: None, max_retries=1)
    scheduler = Scheduler([task])
    state = scheduler.task_states["t"]
    blocks = {b.block_id[1]: b for b in (scheduler.acquire_block("t"), scheduler.acquire_block("t"))}
    assert sorted(blocks) == [4, 7]
    assert release(scheduler, blocks[4], BlockStatus.FAILED) == {"t": state}
    again = scheduler.acquire_block("t")
    assert again.block_id[1] == 4 and scheduler.retries(again) == 1
    release(scheduler, again, BlockStatus.FAILED)
    assert (state.failed_count, state.orphaned_count) == (1, 5)
    release(scheduler, blocks[7])
    # 9 depends only on 7 (its other neighbour, position 8, does not exist)
    last = scheduler.acquire_block("t")
    assert last.block_id[1] == 9
    release(scheduler, last)
    assert scheduler.acquire_block("t") is None
    assert (state.completed_count, state.failed_count, state.orphaned_count) == (2, 1, 5)
    assert state.is_done() and state.pending_count == 0


def test_check_function_skips_done_blocks_at_acquire_time():
    scheduler = Scheduler([task_1d(check_function=lambda block: block.block_id[1] == 2)])
    block = scheduler.acquire_block("test_1d")
    assert block.block_id[1] == 1
    state = scheduler.task_states["test_1d"]
    assert (state.skipped_count, state.completed_count) == (1, 1)


def test_upstream_task_blocks_release_downstream_task_blocks():
    first = daisy.Task("first", Roi((0,), (8,)), Roi((0,), (4,)), Roi((0,), (4,)), lambda b: None, read_write_conflict=False)
    second = daisy.Task("second", Roi((0,), (8,)), Roi((0,), (4,)), Roi((0,), (4,)), lambda b: None, read_write_conflict=False, upstream_tasks=[first])
    scheduler = Scheduler([second])
    assert scheduler.acquire_block("second") is None
    a, b = scheduler.acquire_block("first"), scheduler.acquire_block("first")
    release(scheduler, b)
    assert scheduler.acquire_block("second").write_roi == b.write_roi
    assert [t.task_id for t in scheduler.get_ready_tasks()] == []
    release(scheduler, a)
    assert [t.task_id for t in scheduler.get_ready_tasks()] == ["second"]
