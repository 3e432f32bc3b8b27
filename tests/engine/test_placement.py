"""One answer to "where does this run", for plain requests, blockwise maps
(Scan, DaisyRequestBlocks) and training streams (Train, PreCache): the
scheduler given to build, else dask's configured scheduler, else the active
client, else the node's num_workers, else the calling thread."""

import concurrent.futures

import dask
import dask.threaded
import pytest

from dpowder.engine import cluster, placement
from dpowder.errors import PipelineConfigError


class FakeClient:
    """Duck-types a distributed.Client."""

    def submit(self): ...
    def scatter(self): ...
    def gather(self): ...
    def get(self): ...


OWN = FakeClient()
USER = FakeClient()


def _soon(n):
    future = concurrent.futures.Future()
    future.set_result(OWN)
    return future


@pytest.fixture(autouse=True)
def no_real_cluster(monkeypatch):
    monkeypatch.setattr(cluster, "shared_client", lambda n: OWN)
    monkeypatch.setattr(cluster, "shared_client_soon", _soon)
    monkeypatch.setattr(placement, "default_client", lambda: None)


# (build scheduler, dask config scheduler, active client, num_workers, purpose) -> (kind, workers, client, owned)
TABLE = [
    # nothing given: num_workers decides
    (None, None, None, 1, "request", ("sync", 0, None, False)),
    (None, None, None, 4, "request", ("sync", 0, None, False)),
    (None, None, None, 1, "blockwise", ("sync", 0, None, False)),
    (None, None, None, 2, "blockwise", ("threads", 2, None, False)),
    (None, None, None, 1, "stream", ("distributed", 1, OWN, True)),
    (None, None, None, 0, "stream", ("sync", 0, None, False)),
    (None, None, None, 2, "stream", ("distributed", 2, OWN, True)),
    # an active client wins over num_workers
    (None, None, USER, 2, "blockwise", ("distributed", 0, USER, False)),
    (None, None, USER, 2, "stream", ("distributed", 0, USER, False)),
    (None, None, USER, 1, "request", ("distributed", 0, USER, False)),
    # dask's configured scheduler wins over the active client
    (None, "threads", USER, 2, "blockwise", ("threads", 2, None, False)),
    (None, "threads", None, 1, "stream", ("threads", -1, None, False)),
    (None, "sync", USER, 2, "blockwise", ("sync", 0, None, False)),
    (None, "sync", None, 2, "stream", ("sync", 0, None, False)),
    (None, "processes", None, 1, "request", ("processes", 1, None, False)),
    (None, "processes", None, 2, "blockwise", ("distributed", 2, OWN, True)),
    (None, "dask.distributed", USER, 1, "request", ("distributed", 0, USER, False)),
    # the scheduler given to build wins over everything
    ("sync", "threads", USER, 2, "blockwise", ("sync", 0, None, False)),
    ("threads", None, USER, 3, "blockwise", ("threads", 3, None, False)),
    ("processes", None, USER, 2, "stream", ("distributed", 2, OWN, True)),
    ("processes", None, None, 2, "request", ("processes", 2, None, False)),
    (USER, "sync", None, 2, "blockwise", ("distributed", 0, USER, False)),
    (USER, None, None, 1, "stream", ("distributed", 0, USER, False)),
    (dask.threaded.get, None, None, 2, "blockwise", ("threads", 2, None, False)),
]


@pytest.mark.parametrize("given, configured, active, num_workers, purpose, expected", TABLE)
def test_placement_table(monkeypatch, given, configured, active, num_workers, purpose, expected):
    monkeypatch.setattr(placement, "default_client", lambda: active)
    with dask.config.set(scheduler=configured):
        where = placement.place(given, num_workers, purpose)
    kind, workers, client, owned = expected
    assert where.kind == kind
    if workers >= 0:
        assert where.workers == workers
    if owned and purpose == "stream":
        # the process-wide cluster starts in the background for a stream
        assert where.client.result() is client
    else:
        assert where.client is client
    assert where.owned == owned


def test_distributed_named_without_a_client_says_what_to_do():
    with pytest.raises(PipelineConfigError, match="no active distributed.Client"):
        placement.place("distributed", 1, "request")


def test_an_unknown_scheduler_name_is_a_config_error():
    with pytest.raises(PipelineConfigError, match="unknown dask scheduler 'thread'"):
        placement.place("thread", 1, "blockwise")


def test_processes_in_config_send_blockwise_maps_to_the_process_wide_cluster():
    with dask.config.set({"dpowder.blockwise.workers": "processes"}):
        where = placement.place(None, 2, "blockwise")
    assert (where.kind, where.client, where.owned) == ("distributed", OWN, True)


def test_a_client_without_workers_is_waited_for_then_fails_saying_what_to_start():
    from distributed import Client, LocalCluster

    with dask.config.set({"dpowder.workers-timeout": 1}):
        with LocalCluster(
            n_workers=0, processes=False, dashboard_address=None, scheduler_kwargs={"dashboard_address": ":0"}
        ) as empty, Client(empty, set_as_default=False) as client:
            with pytest.raises(PipelineConfigError, match="got no worker within 1 s: start workers"):
                placement.ready(client)
