"""dpowder.tensorflow always imports; its nodes say what is missing when
constructed (TensorFlow is not installed with dpowder)."""

import importlib.util

import pytest

import dpowder as gp

HAS_TF = importlib.util.find_spec("tensorflow") is not None


@pytest.mark.skipif(HAS_TF, reason="checks the message given where TensorFlow is missing")
@pytest.mark.parametrize("make", [
    lambda: gp.tensorflow.Train("graph.meta", "opt", "loss", {}, {}, {}),
    lambda: gp.tensorflow.Predict("checkpoint", {}, {}),
])
def test_constructing_a_tensorflow_node_without_tensorflow_says_what_to_install(make):
    with pytest.raises(ImportError, match="pip install tensorflow"):
        make()
