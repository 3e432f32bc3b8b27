"""Shared fixtures: a small real LocalCluster (processes, loopback), closed
at the end of the session."""

import numpy as np
import pytest

import dpowder as gp


# a 2-worker LocalCluster of processes on loopback, shared by the session and
# started again if something closed it (the one dpowder.testing ships)
from dpowder.testing import cluster_client  # noqa: E402,F401


def coordinate_volume(shape, dtype=np.int64):
    """A volume whose every voxel holds its flat index: known values at
    known places."""
    return np.arange(int(np.prod(shape)), dtype=dtype).reshape(shape)


@pytest.fixture
def anisotropic_source():
    """RAW: a (10, 20, 30) volume of voxel size (40, 4, 4) at offset
    (80, 12, -8), each voxel holding its flat index."""
    raw = gp.ArrayKey("RAW")
    data = coordinate_volume((10, 20, 30))
    spec = gp.ArraySpec(roi=gp.Roi((80, 12, -8), (400, 80, 120)), voxel_size=(40, 4, 4))
    return raw, data, gp.ArraySource(raw, gp.Array(data, spec))


# -- markers (pyproject.toml registers them; CONTRIBUTING.md: the fast subset) --

# Tests that start a LocalCluster themselves, directly, through a node that
# starts one (a training stream or PreCache without a client, Scan or daisy
# workers with num_workers > 1) or in a subprocess, and tests that ask for
# ``cluster_client`` by ``request.getfixturevalue`` (a module path marks the
# whole module, a test id all its parameters, a full id one of them). Tests
# taking the ``cluster_client`` fixture as an argument, and parameters named
# ``cluster`` (``[cluster]``, ``[sync-cluster]``), are marked without being listed.
CLUSTER_TESTS = {
    "tests/blockwise/test_daisy_subprocess_workers.py",
    "tests/compat/test_classic_training_pipeline.py::test_classic_training_pipeline_runs_unchanged",
    "tests/engine/test_blockwise.py::test_killing_a_worker_halfway_loses_no_block",
    "tests/engine/test_cluster_memory.py",
    "tests/engine/test_fault_tolerance.py",
    "tests/engine/test_flat_scripts.py",
    "tests/engine/test_shutdown.py",
    "tests/engine/test_placement.py::test_a_client_without_workers_is_waited_for_then_fails_saying_what_to_start",
    "tests/engine/test_stream.py::test_two_workers_deliver_close_to_twice_the_batches_of_one_for_a_slow_producer",
    "tests/engine/test_stream.py::test_without_a_client_a_feed_uses_the_process_wide_cluster_and_leaves_it_running",
    "tests/nodes/test_zarr_write.py::test_eight_processes_writing_unaligned_adjacent_blocks",
    "tests/test_cli.py::test_two_local_workers_run_quietly_shut_down_cleanly_and_end_with_a_summary",
    "tests/test_testing.py::test_the_cluster_fixture_sees_a_closed_client_as_gone",
    "tests/torch/test_predict.py::test_daisy_blocks_prediction_is_bit_identical_to_whole_volume_pass[2]",
    "tests/torch/test_predict.py::test_scan_prediction_is_bit_identical_to_whole_volume_pass[2]",
    "tests/torch/test_predict_gpu_placement.py",
}

# Tests that take more than a few seconds (training, framework start-up,
# subprocess workers).
SLOW_TESTS = {
    "tests/blockwise/test_daisy_servers.py::test_logging_helpers_name_and_redirect_worker_logs",
    "tests/blockwise/test_daisy_subprocess_workers.py",
    "tests/compat/test_ext.py::test_frameworks_are_imported_on_first_access_only",
    "tests/engine/test_blockwise.py::test_hundred_thousand_blocks_run_in_flat_driver_memory",
    "tests/engine/test_blockwise.py::test_killing_a_worker_halfway_loses_no_block",
    "tests/engine/test_cluster_memory.py::test_the_driver_unmaps_batch_sized_arrays_when_they_are_dropped",
    "tests/engine/test_cluster_memory.py::test_workers_run_with_two_arenas_no_chunk_cache_and_trim_after_each_task_replacements_too",
    "tests/engine/test_fault_tolerance.py",
    "tests/engine/test_flat_scripts.py",
    "tests/jax/test_jax.py::test_training_drives_the_loss_down_and_returns_outputs_where_requested",
    "tests/nodes/test_random_location.py::test_min_masked_draws_cover_exactly_the_valid_shifts",
    "tests/nodes/test_random_location.py::test_without_mask_every_shift_is_drawn",
    "tests/nodes/test_simple_augment.py::test_p_is_the_probability_of_augmenting",
    "tests/test_cli.py",
    "tests/torch/test_predict.py::test_daisy_blocks_prediction_is_bit_identical_to_whole_volume_pass",
    "tests/torch/test_predict.py::test_importing_dpowder_torch_does_not_import_torch",
    "tests/torch/test_predict.py::test_output_shape_not_matching_the_request_names_block_node_and_key",
    "tests/torch/test_predict.py::test_scan_prediction_is_bit_identical_to_whole_volume_pass",
    "tests/torch/test_train.py::test_importing_dpowder_torch_does_not_import_torch",
    "tests/torch/test_train.py::test_tensorboard_summaries_are_written_to_log_dir",
    "tests/torch/test_train.py::test_training_on_a_learnable_task_drives_the_loss_down",
}


def _listed(item, listed):
    """Whether ``item``'s module, test (any parameters) or exact id is listed."""
    path, _, name = item.nodeid.partition("::")
    return path in listed or item.nodeid in listed or f"{path}::{name.split('[')[0]}" in listed


def _cluster_parameter(item):
    callspec = getattr(item, "callspec", None)
    return callspec is not None and "cluster" in callspec.id.split("-")


def pytest_collection_modifyitems(config, items):
    for item in items:
        uses_fixture = "cluster_client" in getattr(item, "fixturenames", ())
        if uses_fixture or _cluster_parameter(item) or _listed(item, CLUSTER_TESTS):
            item.add_marker(pytest.mark.cluster)
        if _listed(item, SLOW_TESTS):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _unmarked_tests_start_no_cluster(request, monkeypatch):
    """When a run selects by the ``cluster`` mark (``-m "not cluster"``), a
    test without it that starts a LocalCluster fails at once, naming the fix,
    so the fast subset stays free of clusters."""
    if "cluster" not in (request.config.getoption("markexpr") or "") or request.node.get_closest_marker("cluster"):
        return
    import distributed

    def refuse(*args, **kwargs):
        raise RuntimeError(
            f"{request.node.nodeid} starts a LocalCluster but is not marked `cluster`: "
            f"add it to CLUSTER_TESTS in tests/conftest.py"
        )

    monkeypatch.setattr(distributed, "LocalCluster", refuse)
