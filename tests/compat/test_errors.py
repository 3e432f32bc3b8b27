"""The error classes take gunpowder 1.4's constructor arguments (kept as
attributes, making gunpowder's messages) as well as dpowder's single
message; every error carries ``node``, ``key``, ``roi``, ``provided``; they
pickle (errors cross process boundaries on a cluster)."""

import pickle

import pytest

import dpowder as gp
from dpowder.errors import DpowderError, SpecError


class Named:
    def name(self):
        return "MySource"


def test_pipeline_setup_and_teardown_errors_name_the_provider():
    provider = Named()
    setup = gp.PipelineSetupError(provider)
    assert setup.provider is provider
    assert str(setup) == "Exception in MySource while calling setup()"
    teardown = gp.PipelineTeardownError(provider=provider)
    assert teardown.provider is provider
    assert str(teardown) == "Exception in MySource while calling teardown()"
    assert isinstance(teardown, DpowderError)


def test_pipeline_request_error_puts_the_traceback_first():
    error = gp.PipelineRequestError("PIPE", "REQ", ["Traceback:\n", "  boom\n"])
    assert (error.pipeline, error.request, error.original_traceback) == ("PIPE", "REQ", ["Traceback:\n", "  boom\n"])
    assert str(error) == "Traceback:\n  boom\nException in pipeline:\nPIPE\nwhile trying to process request\nREQ"
    plain = gp.PipelineRequestError(pipeline="PIPE", request="REQ")
    assert plain.original_traceback is None
    assert str(plain) == "Exception in pipeline:\nPIPE\nwhile trying to process request\nREQ"


def test_batch_request_error_names_provider_request_and_batch():
    provider = Named()
    error = gp.BatchRequestError(provider, "REQ", "BATCH", ["tb line\n"])
    assert (error.provider, error.request, error.batch, error.original_traceback) == (
        provider,
        "REQ",
        "BATCH",
        ["tb line\n"],
    )
    assert str(error) == "Exception in MySource while processing requestREQBatch returned so far:\nBATCH\n\ntb line\n"
    assert error.node is provider, "the provider is the node the error is about"
    without = gp.BatchRequestError(provider, "REQ", None)
    assert str(without) == "Exception in MySource while processing requestREQBatch returned so far:\nNone\n\n"


def test_batch_filter_error_prefixes_the_filter_name():
    error = gp.BatchFilterError(Named(), "prepare returned a list")
    assert str(error) == "Error in MySource: prepare returned a list"
    assert error.msg == "prepare returned a list"
    assert isinstance(error.batch_filter, Named)
    node = gp.Normalize(gp.ArrayKey("RAW"))
    assert str(gp.BatchFilterError(node, "bad")) == "Error in Normalize: bad"


def test_a_single_message_keeps_dpowders_form():
    error = gp.BatchRequestError("Normalize (created at x.py:3) was asked for RAW")
    assert str(error) == "Normalize (created at x.py:3) was asked for RAW"
    assert error.args == ("Normalize (created at x.py:3) was asked for RAW",)
    assert (error.node, error.key, error.roi, error.provided) == (None, None, None, None)
    assert not hasattr(error, "provider")


def test_errors_carry_node_key_roi_and_provided():
    key = gp.ArrayKey("RAW")
    roi = gp.Roi((0, 0), (10, 10))
    provided = gp.Roi((0, 0), (5, 5))
    error = gp.BatchRequestError("outside", node="N", key=key, roi=roi, provided=provided)
    assert (error.node, error.key, error.roi, error.provided) == ("N", key, roi, provided)
    assert str(error) == "outside"
    error = gp.PipelineSetupError(Named(), key=key)
    assert error.key is key and isinstance(error.node, Named)


def test_hierarchy():
    assert not issubclass(gp.PipelineSetupError, gp.PipelineRequestError)
    # a departure from gunpowder: ``except PipelineRequestError`` around
    # request_batch catches request errors raised anywhere in the engine
    assert issubclass(gp.BatchRequestError, gp.PipelineRequestError)
    assert issubclass(gp.BatchFilterError, gp.PipelineRequestError)
    for cls in (gp.PipelineSetupError, gp.PipelineTeardownError, gp.PipelineRequestError, gp.BatchRequestError):
        assert issubclass(cls, DpowderError)
    assert issubclass(SpecError, TypeError) and issubclass(SpecError, AssertionError)
    assert gp.nodes.batch_provider.BatchRequestError is gp.BatchRequestError
    assert gp.nodes.batch_filter.BatchFilterError is gp.BatchFilterError


@pytest.mark.parametrize(
    "error",
    [
        gp.BatchRequestError("a message", key=gp.ArrayKey("RAW")),
        gp.BatchRequestError("Source", "REQ", None, ["tb\n"]),
        gp.PipelineSetupError("Source"),
        gp.PipelineRequestError("PIPE", "REQ"),
        gp.BatchFilterError("Filter", "bad"),
    ],
)
def test_errors_pickle_with_message_and_attributes(error):
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert copy.__dict__ == error.__dict__


def test_wrong_arguments_are_a_type_error():
    with pytest.raises(TypeError, match="msg"):
        gp.BatchFilterError(Named())
    with pytest.raises(TypeError, match="at most 1"):
        gp.PipelineSetupError(Named(), "extra")
    with pytest.raises(TypeError, match="unexpected keyword"):
        gp.PipelineRequestError(pipe="P", request="R")
