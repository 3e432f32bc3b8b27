"""``NodeContract`` for dpowder's own node tests: the suite ships as
``dpowder.testing`` (so users can check their nodes); this module keeps the
tests' import path. The ``cluster_client`` fixture comes from conftest.py."""

from dpowder.testing import NodeContract, assert_batches_equal

__all__ = ["NodeContract", "assert_batches_equal"]
