"""Keys: one identifier, one key, in every process."""

import pickle

import dpowder as gp


def test_same_identifier_same_key_and_registry():
    a = gp.ArrayKey("KEY_TEST")
    b = gp.ArrayKey("KEY_TEST")
    assert a == b and hash(a) == hash(b)
    assert gp.ArrayKeys.KEY_TEST == a
    assert {a: 1}[b] == 1
    g = gp.GraphKey("GRAPH_KEY_TEST")
    assert gp.GraphKeys.GRAPH_KEY_TEST == g


def test_array_and_graph_keys_of_one_identifier_differ():
    assert gp.ArrayKey("SAME_NAME") != gp.GraphKey("SAME_NAME")


def test_keys_pickle_by_identifier():
    a = gp.ArrayKey("PICKLED")
    assert pickle.loads(pickle.dumps(a)) == a
    assert repr(a) == "PICKLED"
