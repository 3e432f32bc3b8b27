"""A streamed batch's graph goes to the cluster named by its key: the
driver does not tokenize (pickle) every task of every batch to name it."""

import operator

import dask._expr

from dpowder.engine.stream import _named_graph, submit


def test_submit_names_the_graph_by_its_key_without_tokenizing_the_tasks(cluster_client, monkeypatch):
    calls = []

    def tokenize(*args, **kwargs):
        calls.append(args)
        return "token"

    monkeypatch.setattr(dask._expr, "_tokenize_deterministic", tokenize)
    graph = {"part-7": (operator.add, 2, 3), "batch-7": (operator.mul, "part-7", 4)}
    assert submit(cluster_client, graph, "batch-7", {}).result() == 20
    assert calls == []


def test_the_named_graph_holds_the_tasks_as_they_are():
    tasks = {"batch-3": (operator.add, 1, 2)}
    named = _named_graph(tasks, "batch-3")
    assert named.__dask_graph__() == tasks
    assert named.deterministic_token == "batch-3"
