"""``NodeContract``: the guarantees every node keeps, as a reusable pytest
suite, so that you can check your own nodes as dpowder checks its own.

A test class subclasses it and defines ``make_pipeline()`` (returning the
pipeline and the request to send it) and, optionally, ``bad_requests()``::

    # conftest.py (at the root of your tests): the cluster_client fixture
    pytest_plugins = ["dpowder.testing"]

    # test_my_node.py
    import dpowder as gp
    from dpowder.testing import NodeContract

    class TestMyNode(NodeContract):
        def make_pipeline(self):
            return gp.ArraySource(RAW, array) + MyNode(RAW), request

        def bad_requests(self):
            return [(request_outside_the_data, "outside")]

The suite checks: the same seed gives the same batch under the synchronous
scheduler, threads and a 2-worker ``LocalCluster`` (the ``cluster_client``
fixture); the node pickles small; bad requests fail at plan time with a
``BatchRequestError`` before any task runs.

Requires pytest (the ``test`` extra); ``import dpowder`` does not import
this module.
"""

import pickle
from collections.abc import Iterator
from typing import Any

import dask
import numpy as np
import pytest

from .batch import Batch
from .errors import BatchRequestError
from .pipeline import build

__all__ = ["NodeContract", "assert_batches_equal", "cluster_client"]


def assert_batches_equal(a: Batch, b: Batch) -> None:
    """Assert that two batches hold the same keys, and per key the same ROI,
    dtype and data (arrays) or node locations (graphs).

    Args:

        a (Batch): One batch.

        b (Batch): The other.
    """
    assert sorted(a.keys()) == sorted(b.keys())
    for key in a.arrays:
        assert a[key].spec.roi == b[key].spec.roi, key
        assert a[key].data.dtype == b[key].data.dtype, key
        np.testing.assert_array_equal(np.asarray(a[key].data), np.asarray(b[key].data), err_msg=str(key))
    for key in a.graphs:
        nodes_a = {n.id: tuple(n.location) for n in a[key].nodes}
        nodes_b = {n.id: tuple(n.location) for n in b[key].nodes}
        assert nodes_a == nodes_b, key


_session_cluster: dict = {}


def _running(client: Any) -> bool:
    # a closed client still answers scheduler_info from its cache
    if getattr(client, "status", "running") != "running":
        return False
    try:
        client.scheduler_info()
        return True
    except Exception:  # noqa: BLE001 -- a closed client or loop: start another
        return False


def _close_session_cluster() -> None:
    client, cluster = _session_cluster.pop("client", None), _session_cluster.pop("cluster", None)
    for thing in (client, cluster):
        if thing is not None:
            try:
                thing.close()
            except Exception:  # noqa: BLE001 -- already gone
                pass


@pytest.fixture
def cluster_client() -> Iterator[Any]:
    """A 2-worker ``distributed.LocalCluster`` of single-threaded processes
    on loopback, shared by the tests of a session (started on first use,
    started again if something closed it) and closed at exit."""
    client = _session_cluster.get("client")
    if client is None or not _running(client):
        import atexit

        from distributed import Client

        from .engine.cluster import local_cluster

        _close_session_cluster()
        cluster = local_cluster(2)
        client = Client(cluster, set_as_default=False)
        if not _session_cluster:
            atexit.register(_close_session_cluster)
        _session_cluster.update(client=client, cluster=cluster)
    yield client


class NodeContract:
    """Subclass and define ``make_pipeline(self) -> (pipeline, request)``.

    ``max_pickled_bytes`` bounds the pickled size of the node under test
    (``node_under_test``, by default the pipeline's output node).
    """

    max_pickled_bytes = 100_000

    def make_pipeline(self) -> tuple[Any, Any]:
        raise NotImplementedError

    def bad_requests(self) -> list[tuple[Any, str]]:
        """``[(request, substring expected in the error message)]``."""
        return []

    def node_under_test(self, pipeline: Any) -> Any:
        return pipeline.output

    def test_same_seed_same_batch_any_scheduler(self, cluster_client: Any) -> None:
        pipeline, request = self.make_pipeline()
        request.random_seed = 1234
        with build(pipeline) as p:
            reference = p.request_batch(request)
            with dask.config.set(scheduler="threads"):
                threaded = p.request_batch(request)
            distributed = cluster_client.compute(p.to_dask(request)).result()
        assert_batches_equal(reference, threaded)
        assert_batches_equal(reference, distributed)

    def test_node_pickles_small(self) -> None:
        pipeline, request = self.make_pipeline()
        with build(pipeline) as p:
            node = self.node_under_test(p)
            size = len(pickle.dumps(node))
        assert size < self.max_pickled_bytes, f"{node.name()} pickles to {size} bytes"

    def test_bad_requests_fail_at_plan_time(self) -> None:
        pipeline, _ = self.make_pipeline()
        with build(pipeline) as p:
            for request, message in self.bad_requests():
                with pytest.raises(BatchRequestError, match=message):
                    p.to_dask(request)
