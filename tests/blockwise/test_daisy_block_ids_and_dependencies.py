"""Block ids, levels and dependency counts equal daisy's, for daisy's own
example geometries (its test_dependency_graph.py: 1D, both write shapes,
every fit mode; its test_scheduler.py: 2D) and a 2D geometry with a larger
write shape in every fit mode. The expected values are worked out by hand
from daisy's rules, written next to each case:

- id: the Cantor number (counted from 0) of ``(write begin - total begin) //
  write shape``; in 1D that number itself, in 2D ``(x+y)(x+y+1)/2 + x``.
- level stride: context + write shape, rounded up to the write shape
  (clamped to the rounded total write shape); level offsets: every multiple
  of the write shape below the stride, in reversed C order.
- a block of level l depends on the blocks of level l-1 at daisy's
  conflict offsets that exist (the fit's inclusion rule).
"""

import pytest

import dpowder.blockwise as daisy
from dpowder.blockwise import Block, BlockwiseDependencyGraph, DependencyGraph, Roi

TOTAL_1D = Roi((0,), (12,))
READ_1D = Roi((0,), (5,))
SMALL = Roi((2,), (1,))  # context 2 each side: total write ROI [2, 10)
MEDIUM = Roi((1,), (3,))  # context 1 each side: total write ROI [1, 11)


def summary(graph):
    """{block id: (level, number of upstream blocks)}"""
    result = {}
    for block, upstream in graph.enumerate_all_dependencies():
        assert block.block_id[1] not in result
        result[block.block_id[1]] = (graph.level(block), len(upstream))
    assert len(result) == graph.num_blocks
    return result


# small write ROI: stride 3, levels (offsets 2, 1, 0): positions p = 2, 5 |
# 1, 4, 7 | 0, 3, 6; id = p + 2; conflict offsets of levels 1 and 2: -2, +1
SMALL_CONFLICT = {4: (0, 0), 7: (0, 0), 3: (1, 1), 6: (1, 2), 9: (1, 1), 2: (2, 1), 5: (2, 2), 8: (2, 2)}
# medium write ROI, valid: 3 blocks (write [1:4), [4:7), [7:10)), id = p
# (int(1/3 + p)); stride 6, levels: p odd | p even; conflict offsets -1, +1
MEDIUM_VALID_CONFLICT = {1: (0, 0), 0: (1, 1), 2: (1, 1)}
# overhang and shrink: a 4th block, write [10:13) (shrunk to [10:11))
MEDIUM_OVERHANG_CONFLICT = {1: (0, 0), 3: (0, 0), 0: (1, 1), 2: (1, 2)}


@pytest.mark.parametrize(
    "write, fit, expected",
    [
        (SMALL, "valid", SMALL_CONFLICT),
        (SMALL, "overhang", SMALL_CONFLICT),
        (SMALL, "shrink", SMALL_CONFLICT),
        (MEDIUM, "valid", MEDIUM_VALID_CONFLICT),
        (MEDIUM, "overhang", MEDIUM_OVERHANG_CONFLICT),
        (MEDIUM, "shrink", MEDIUM_OVERHANG_CONFLICT),
    ],
)
def test_1d_ids_levels_and_dependency_counts_with_conflicts(write, fit, expected):
    graph = BlockwiseDependencyGraph("t", READ_1D, write, True, fit, total_read_roi=TOTAL_1D)
    assert summary(graph) == expected
    # daisy's block counts (its test_dependency_graph.py): 8, 8, 8, 3, 4, 4
    assert graph.num_blocks == len(expected)


@pytest.mark.parametrize("write, fit, num_blocks", [(SMALL, f, 8) for f in ("valid", "overhang", "shrink")] + [(MEDIUM, "valid", 3), (MEDIUM, "overhang", 4), (MEDIUM, "shrink", 4)])
def test_1d_without_conflicts_is_one_level_without_dependencies(write, fit, num_blocks):
    graph = BlockwiseDependencyGraph("t", READ_1D, write, False, fit, total_read_roi=TOTAL_1D)
    offset = 2 if write == SMALL else 0
    assert summary(graph) == {offset + p: (0, 0) for p in range(num_blocks)}
    assert graph.num_levels == 1 and graph.num_roots() == num_blocks


def test_1d_shrink_keeps_the_id_and_the_context_of_the_last_block():
    graph = BlockwiseDependencyGraph("t", READ_1D, MEDIUM, True, "shrink", total_read_roi=TOTAL_1D)
    (last,) = [b for b in graph.level_blocks(0) if b.block_id[1] == 3]
    assert last.write_roi == Roi((10,), (1,)) and last.read_roi == Roi((9,), (3,))
    assert last.requested_write_roi == Roi((10,), (3,))


# daisy's test_scheduler.py 2D task: total 6x6, read 3x3, write (1, 1) + 1x1;
# ids (row = first axis):
#   4,  7, 11, 16
#   8, 12, 17, 23
#  13, 18, 24, 31
#  19, 25, 32, 40
# levels: 12 23 25 40 | 8 17 19 32 | 7 16 18 31 | 4 11 13 24. Conflict
# offsets (grid positions): level 1 (0, +-1), level 2 (+-1, +-1), level 3
# (0, +-1); e.g. 18 at (2, 1) depends on (1, 0), (1, 2), (3, 0), (3, 2).
SCHEDULER_2D = {
    12: (0, 0), 23: (0, 0), 25: (0, 0), 40: (0, 0),
    8: (1, 1), 17: (1, 2), 19: (1, 1), 32: (1, 2),
    7: (2, 2), 16: (2, 1), 18: (2, 4), 31: (2, 2),
    4: (3, 1), 11: (3, 2), 13: (3, 1), 24: (3, 2),
}  # fmt: skip


def test_2d_ids_levels_and_dependency_counts_of_daisys_scheduler_example():
    graph = BlockwiseDependencyGraph("t", Roi((0, 0), (3, 3)), Roi((1, 1), (1, 1)), True, "valid", total_read_roi=Roi((0, 0), (6, 6)))
    assert summary(graph) == SCHEDULER_2D
    assert [b.block_id[1] for b in graph.root_gen()] == [12, 23, 25, 40]
    (block_12,) = [b for b in graph.root_gen() if b.block_id[1] == 12]
    assert [b.block_id[1] for b in graph.downstream(block_12)] == [8, 17]
    (block_18,) = [b for b in graph.level_blocks(2) if b.block_id[1] == 18]
    assert [b.block_id[1] for b in graph.upstream(block_18)] == [8, 17, 19, 32]


# 2D, total 12x10, read 5x5, write (1, 1) + 3x3: total write ROI (1, 1) +
# (10, 8); id of position (x, y) = cantor(x, y) (int(1/3 + p) = p); stride
# (6, 6); levels by position parity: (odd, odd) | (odd, even) | (even, odd)
# | (even, even). valid: 3x2 blocks; overhang/shrink: 4x3.
VALID_2D = {4: (0, 0), 2: (1, 1), 1: (2, 1), 8: (2, 1), 0: (3, 1), 5: (3, 1)}
OVERHANG_2D = {
    4: (0, 0), 13: (0, 0),
    2: (1, 1), 7: (1, 1), 9: (1, 1), 18: (1, 1),
    1: (2, 2), 8: (2, 4),
    0: (3, 1), 3: (3, 1), 5: (3, 1), 12: (3, 1),
}  # fmt: skip


@pytest.mark.parametrize("fit, expected", [("valid", VALID_2D), ("overhang", OVERHANG_2D), ("shrink", OVERHANG_2D)])
def test_2d_fit_modes(fit, expected):
    graph = BlockwiseDependencyGraph("t", Roi((0, 0), (5, 5)), Roi((1, 1), (3, 3)), True, fit, total_read_roi=Roi((0, 0), (12, 10)))
    assert summary(graph) == expected
    without = BlockwiseDependencyGraph("t", Roi((0, 0), (5, 5)), Roi((1, 1), (3, 3)), False, fit, total_read_roi=Roi((0, 0), (12, 10)))
    assert summary(without) == {i: (0, 0) for i in expected}
    if fit == "shrink":
        (corner,) = [b for b in graph.level_blocks(1) if b.block_id[1] == 18]
        assert corner.write_roi == Roi((10, 7), (1, 2)) and corner.read_roi == Roi((9, 6), (3, 4))


def test_upstream_and_downstream_are_each_others_inverse():
    graph = BlockwiseDependencyGraph("t", Roi((0, 0), (5, 5)), Roi((1, 1), (3, 3)), True, "overhang", total_read_roi=Roi((0, 0), (12, 10)))
    for block, upstream in graph.enumerate_all_dependencies():
        for other in upstream:
            assert block in graph.downstream(other)
            assert other.write_roi.intersects(block.read_roi)


def test_blocks_compare_and_hash_by_id():
    total = Roi((0, 0), (6, 6))
    a = Block(total, Roi((1, 1), (3, 3)), Roi((2, 2), (1, 1)), task_id="t")
    b = Block(total, Roi((1, 1), (3, 3)), Roi((2, 2), (1, 1)), task_id="t")
    # index (2, 2): 4 * 5 / 2 + 2
    assert a.block_id == ("t", 12) and a == b and len({a, b}) == 1
    assert a != Block(total, Roi((1, 1), (3, 3)), Roi((2, 2), (1, 1)), task_id="u")
    assert a.status == daisy.BlockStatus.CREATED
    assert daisy.cantor_number((0, 0, 0)) == 0 and daisy.cantor_number((0, 0, 1)) == 1 and daisy.cantor_number((1, 0, 0)) == 3


def test_downstream_tasks_depend_on_the_upstream_blocks_they_read():
    first = daisy.Task("first", Roi((0,), (12,)), Roi((0,), (4,)), Roi((0,), (4,)), lambda b: None, read_write_conflict=False)
    second = daisy.Task(
        "second", Roi((0,), (12,)), Roi((0,), (6,)), Roi((1,), (4,)), lambda b: None, read_write_conflict=False, upstream_tasks=[first]
    )
    graph = DependencyGraph([second])
    assert sorted(graph.task_ids) == ["first", "second"] and graph.root_tasks() == ["first"]
    (block,) = [b for b in graph.root_gen("second") if b.block_id[1] == 0]
    # write [1:5), read [0:6): first's blocks [0:4) and [4:8)
    assert block.read_roi == Roi((0,), (6,))
    assert [b.block_id for b in graph.upstream(block)] == [("first", 0), ("first", 1)]
    (first_1,) = [b for b in graph.root_gen("first") if b.block_id[1] == 1]
    # first's [4:8) is read by second's blocks reading [0:6) and [4:10)
    assert [b.block_id for b in graph.downstream(first_1)] == [("second", 0), ("second", 1)]


def test_expand_roi_to_grid():
    # write ROIs at 1 + 3k (total begin 0, context 1): [2:8) grows to [1:10)
    assert daisy.expand_roi_to_grid(Roi((2,), (6,)), Roi((0,), (12,)), Roi((0,), (5,)), Roi((1,), (3,))) == Roi((1,), (9,))
    assert daisy.expand_write_roi_to_grid(Roi((2, 5), (6, 1)), Roi((0, 0), (4, 4))) == Roi((0, 4), (8, 4))
