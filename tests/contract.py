"""``NodeContract``: the guarantees every node keeps, as a reusable suite.

A node's test module subclasses it and defines ``make_pipeline()`` (returning
the pipeline and the request to send it) and, optionally, ``bad_requests()``.
The suite checks: the same seed gives the same batch under the synchronous
scheduler, threads and a 2-worker LocalCluster; different seeds are allowed
to differ; the node pickles small; bad requests fail at plan time with a
``BatchRequestError`` before any task runs.
"""

import pickle

import dask
import numpy as np
import pytest

import dpowder as gp


def assert_batches_equal(a, b):
    assert sorted(a.keys()) == sorted(b.keys())
    for key in a.arrays:
        assert a[key].spec.roi == b[key].spec.roi, key
        assert a[key].data.dtype == b[key].data.dtype, key
        np.testing.assert_array_equal(np.asarray(a[key].data), np.asarray(b[key].data), err_msg=str(key))
    for key in a.graphs:
        nodes_a = {n.id: tuple(n.location) for n in a[key].nodes}
        nodes_b = {n.id: tuple(n.location) for n in b[key].nodes}
        assert nodes_a == nodes_b, key


class NodeContract:
    """Subclass and define ``make_pipeline(self) -> (pipeline, request)``."""

    max_pickled_bytes = 100_000

    def make_pipeline(self):
        raise NotImplementedError

    def bad_requests(self):
        """``[(request, substring expected in the error message)]``."""
        return []

    def node_under_test(self, pipeline):
        return pipeline.output

    def test_same_seed_same_batch_any_scheduler(self, cluster_client):
        pipeline, request = self.make_pipeline()
        request.random_seed = 1234
        with gp.build(pipeline) as p:
            reference = p.request_batch(request)
            with dask.config.set(scheduler="threads"):
                threaded = p.request_batch(request)
            distributed = cluster_client.compute(p.to_dask(request)).result()
        assert_batches_equal(reference, threaded)
        assert_batches_equal(reference, distributed)

    def test_node_pickles_small(self):
        pipeline, request = self.make_pipeline()
        with gp.build(pipeline) as p:
            node = self.node_under_test(p)
            size = len(pickle.dumps(node))
        assert size < self.max_pickled_bytes, f"{node.name()} pickles to {size} bytes"

    def test_bad_requests_fail_at_plan_time(self):
        pipeline, _ = self.make_pipeline()
        with gp.build(pipeline) as p:
            for request, message in self.bad_requests():
                with pytest.raises(gp.BatchRequestError, match=message):
                    p.to_dask(request)
