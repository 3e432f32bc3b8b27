"""ProducerPool: gunpowder's worker processes that each repeat a callable;
results come back through ``get``, exceptions are re-raised there, and
``get(timeout)`` gives up with ``NoResult``."""

import os
import time

import pytest

import dpowder as gp
from dpowder.producer_pool import NoResult, ProducerPool, WorkersDied


def _constant(value):
    def produce():
        time.sleep(0.01)
        return value

    return produce


def _fails():
    raise ValueError("producer failed")


def _slow():
    time.sleep(30)
    return 1


def _exits():
    os._exit(3)


def test_results_of_every_callable_come_back():
    pool = ProducerPool([_constant(1), _constant(2)], queue_size=4)
    pool.start()
    try:
        seen = {pool.get() for _ in range(40)}
    finally:
        pool.stop()
    assert seen == {1, 2}


def test_an_exception_is_reraised_by_get():
    pool = ProducerPool([_fails])
    pool.start()
    try:
        with pytest.raises(ValueError, match="producer failed"):
            pool.get()
    finally:
        pool.stop()


def test_get_with_timeout_raises_no_result():
    pool = ProducerPool([_slow])
    pool.start()
    start = time.monotonic()
    try:
        with pytest.raises(NoResult):
            pool.get(timeout=0.2)
    finally:
        pool.stop()
    assert time.monotonic() - start < 10, "stop does not wait for the result being produced"


def test_a_dead_worker_is_reported():
    pool = ProducerPool([_exits])
    pool.start()
    with pytest.raises(WorkersDied):
        pool.get()
    pool.stop()


def test_a_stopped_pool_cannot_start_again_and_is_exported():
    assert gp.ProducerPool is ProducerPool
    assert gp.producer_pool.NoResult is NoResult
    pool = ProducerPool([_constant(1)])
    pool.start()
    pool.stop()
    with pytest.raises(RuntimeError, match="second time"):
        pool.start()
