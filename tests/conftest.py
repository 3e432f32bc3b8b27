"""Shared fixtures: a small real LocalCluster (processes, loopback), closed
at the end of the session."""

import numpy as np
import pytest

import dpowder as gp


@pytest.fixture(scope="session")
def cluster_client():
    """A 2-worker ``distributed.LocalCluster`` of processes on loopback."""
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
        silence_logs=40,
    )
    client = Client(cluster, set_as_default=False)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


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

# Tests that start a LocalCluster themselves, directly or through a node that
# starts one (a training stream or PreCache without a client, Scan or daisy
# workers with num_workers > 1): a module path marks the whole module. Tests
# using the ``cluster_client`` fixture are marked without being listed.
CLUSTER_TESTS = {
    "tests/engine/test_blockwise.py::test_killing_a_worker_halfway_loses_no_block",
    "tests/engine/test_stream.py::test_two_workers_deliver_close_to_twice_the_batches_of_one_for_a_slow_producer",
    "tests/engine/test_stream.py::test_without_a_client_a_feed_uses_the_process_wide_cluster_and_leaves_it_running",
    "tests/nodes/test_precache.py::test_equal_requests_are_served_from_the_cache_in_seed_order[cluster]",
    "tests/nodes/test_zarr_write.py::test_eight_processes_writing_unaligned_adjacent_blocks",
}

# Tests that take more than a few seconds (training, framework start-up,
# subprocess workers).
SLOW_TESTS = {
    "tests/blockwise/test_daisy_servers.py::test_logging_helpers_name_and_redirect_worker_logs",
    "tests/blockwise/test_daisy_subprocess_workers.py",
    "tests/engine/test_blockwise.py::test_hundred_thousand_blocks_run_in_flat_driver_memory",
    "tests/engine/test_blockwise.py::test_killing_a_worker_halfway_loses_no_block",
    "tests/engine/test_flat_scripts.py",
}


def _listed(item, listed):
    """Whether ``item``'s module, test (any parameters) or exact id is listed."""
    path, _, name = item.nodeid.partition("::")
    return path in listed or item.nodeid in listed or f"{path}::{name.split('[')[0]}" in listed


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "cluster_client" in getattr(item, "fixturenames", ()) or _listed(item, CLUSTER_TESTS):
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
