"""The ``cluster`` and ``slow`` marks land where tests/conftest.py says: on
tests taking ``cluster_client``, on ``[cluster]`` parameters and on listed
modules, tests and parameter sets, and nowhere else; a listed id must name a
collected test (a renamed test would silently drop its mark)."""

import pathlib
from types import SimpleNamespace

import pytest

from tests import conftest

ROOT = pathlib.Path(__file__).resolve().parents[1]


class Item(SimpleNamespace):
    def add_marker(self, mark):
        self.marks.append(mark.name)


def item(nodeid, fixturenames=(), param_id=None):
    callspec = None if param_id is None else SimpleNamespace(id=param_id)
    return Item(nodeid=nodeid, fixturenames=list(fixturenames), callspec=callspec, marks=[])


def marks_of(*items):
    conftest.pytest_collection_modifyitems(None, list(items))
    return [i.marks for i in items]


def test_cluster_client_users_and_cluster_parameters_are_cluster_tests():
    assert marks_of(
        item("tests/x.py::test_a", ["cluster_client", "tmp_path"]),
        item("tests/x.py::test_b[cluster]", ["scheduler"], "cluster"),
        item("tests/x.py::test_b[sync]", ["scheduler"], "sync"),
        item("tests/x.py::test_c[3-cluster]", [], "3-cluster"),
        item("tests/x.py::test_d[clustered]", [], "clustered"),
    ) == [["cluster"], ["cluster"], [], ["cluster"], []]


def test_a_listed_module_test_or_parameter_set_is_marked():
    module = "tests/torch/test_predict_gpu_placement.py"
    test = "tests/engine/test_stream.py::test_two_workers_deliver_close_to_twice_the_batches_of_one_for_a_slow_producer"
    one = "tests/torch/test_predict.py::test_scan_prediction_is_bit_identical_to_whole_volume_pass[2]"
    assert marks_of(
        item(f"{module}::test_anything"),
        item(test),
        item(one, [], "2"),
        item(one.replace("[2]", "[1]"), [], "1"),
    ) == [["cluster"], ["cluster"], ["cluster", "slow"], ["slow"]]


@pytest.mark.parametrize("listed", ["CLUSTER_TESTS", "SLOW_TESTS"])
def test_every_listed_id_names_an_existing_module_or_test(listed):
    for entry in sorted(getattr(conftest, listed)):
        path, _, name = entry.partition("::")
        source = (ROOT / path).read_text()
        if name:
            assert f"def {name.split('[')[0]}(" in source, entry
