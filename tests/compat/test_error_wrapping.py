"""Any exception raised while a request is served reaches the caller as
gunpowder's wrapper: ``Pipeline.request_batch`` raises a
``PipelineRequestError``, ``node.request_batch`` a ``BatchRequestError``.
The error is also an instance of the original exception's class (so code
catching the original keeps working), has the original as ``__cause__``,
its message first, the failing node and the request in the message, and
gunpowder's attributes. dpowder's own request errors pass unchanged; inside
blockwise tasks nothing is wrapped, so transient errors stay retryable."""

import pickle

import numpy as np
import pytest

import dpowder as gp

RAW = gp.ArrayKey("RAW")


def source():
    data = np.arange(16, dtype=np.float32).reshape(4, 4)
    return gp.ArraySource(RAW, gp.Array(data, gp.ArraySpec(gp.Roi((0, 0), (4, 4)), (1, 1))))


def request():
    return gp.BatchRequest({RAW: gp.ArraySpec(gp.Roi((0, 0), (4, 4)))}, random_seed=3)


class FailsInProcess(gp.BatchFilter):
    def process(self, batch, request):
        raise ValueError("no channel axis 2")


class AssertsInPrepare(gp.BatchFilter):
    def prepare(self, request):
        assert request[RAW].roi.shape[0] > 10, "too small"

    def process(self, batch, request):
        pass


class TwoArgumentError(Exception):
    def __init__(self, code, detail):
        super().__init__(f"{code}: {detail}")
        self.code = code


class FailsWithCustomError(gp.BatchFilter):
    def process(self, batch, request):
        raise TwoArgumentError(7, "custom")


class MissingKey(gp.BatchFilter):
    def process(self, batch, request):
        return {}["nothing here"]


def test_pipeline_request_batch_raises_pipeline_request_error_that_is_the_original_too():
    node = FailsInProcess()
    pipeline = source() + node
    with gp.build(pipeline):
        with pytest.raises(gp.PipelineRequestError) as info:
            pipeline.request_batch(request())
    error = info.value
    assert isinstance(error, ValueError) and isinstance(error, gp.BatchRequestError)
    assert type(error).__name__ == "BatchRequestError[ValueError]"
    assert isinstance(error.__cause__, ValueError) and str(error.__cause__) == "no channel axis 2"
    message = str(error)
    assert message.startswith("ValueError: no channel axis 2\nException in FailsInProcess (created at ")
    assert "test_error_wrapping.py" in message and "RAW" in message
    assert "Traceback (most recent call last)" in message
    assert error.provider is node and error.node is node and error.batch is None
    assert error.request[RAW].roi == gp.Roi((0, 0), (4, 4))
    assert any("raise ValueError" in line for line in error.original_traceback)


def test_code_catching_the_original_class_still_catches_it():
    with gp.build(source() + FailsInProcess()) as p:
        with pytest.raises(ValueError, match="no channel axis 2"):
            p.request_batch(request())


def test_node_request_batch_raises_batch_request_error_for_an_assertion_in_prepare():
    node = AssertsInPrepare()
    with gp.build(source() + node):
        with pytest.raises(gp.BatchRequestError) as info:
            node.request_batch(request())
    error = info.value
    assert isinstance(error, AssertionError)
    # (pytest's assertion rewriting adds the compared values to the text)
    assert str(error).startswith("AssertionError: too small\n")
    assert "\nException in AssertsInPrepare (created at " in str(error)
    assert error.provider is node


def test_an_exception_whose_init_takes_other_arguments_is_wrapped_too():
    with gp.build(source() + FailsWithCustomError()) as p:
        with pytest.raises(TwoArgumentError) as info:
            p.request_batch(request())
    assert isinstance(info.value, gp.BatchRequestError)
    assert str(info.value).startswith("TwoArgumentError: 7: custom\n")
    assert info.value.__cause__.code == 7


def test_a_key_error_message_is_the_text_not_its_repr():
    with gp.build(source() + MissingKey()) as p:
        with pytest.raises(KeyError) as info:
            p.request_batch(request())
    assert str(info.value).startswith("KeyError: 'nothing here'\nException in MissingKey")


def test_dpowder_request_errors_pass_unchanged():
    with gp.build(source()) as p:
        with pytest.raises(gp.BatchRequestError) as info:
            p.request_batch(gp.BatchRequest({RAW: gp.ArraySpec(gp.Roi((0, 0), (8, 8)))}))
    assert type(info.value) is gp.BatchRequestError
    assert "outside what it provides" in str(info.value)


def test_the_wrapped_class_is_cached_and_the_error_pickles():
    errors = []
    for _ in range(2):
        with gp.build(source() + FailsInProcess()) as p:
            with pytest.raises(ValueError) as info:
                p.request_batch(request())
        errors.append(info.value)
    assert type(errors[0]) is type(errors[1])
    copy = pickle.loads(pickle.dumps(errors[0]))
    assert isinstance(copy, gp.BatchRequestError) and isinstance(copy, ValueError)
    assert str(copy) == str(errors[0])


class FlakyOnce(gp.BatchFilter):
    """Fails the first attempt of every block with a transient error."""

    def __init__(self):
        self.attempts = {}

    def process(self, batch, request):
        begin = tuple(request[RAW].roi.begin)
        self.attempts[begin] = self.attempts.get(begin, 0) + 1
        if self.attempts[begin] == 1:
            raise OSError("transient")


def test_transient_errors_inside_scan_blocks_stay_retryable():
    node = FlakyOnce()
    reference = gp.BatchRequest({RAW: gp.ArraySpec(gp.Roi((0, 0), (2, 2)))})
    pipeline = source() + node + gp.Scan(reference)
    with gp.build(pipeline):
        batch = pipeline.request_batch(gp.BatchRequest({RAW: gp.ArraySpec(gp.Roi((0, 0), (4, 4)))}))
    np.testing.assert_array_equal(np.asarray(batch[RAW].data), np.arange(16, dtype=np.float32).reshape(4, 4))
    assert node.attempts == {(0, 0): 2, (0, 2): 2, (2, 0): 2, (2, 2): 2}


def test_the_message_names_the_node_that_failed_not_only_the_one_asked():
    top = gp.Normalize(RAW, factor=1.0)
    with gp.build(source() + FailsInProcess() + top) as p:
        with pytest.raises(gp.BatchRequestError) as info:
            p.request_batch(request())
    assert "\nException in FailsInProcess (created at " in str(info.value)
    assert info.value.provider is top


class ReadsUpstreamInSetup(gp.BatchFilter):
    """Requests a batch upstream in setup (as RandomLocation reads its mask)."""

    def setup(self):
        self.get_upstream_provider().request_batch(request())

    def process(self, batch, request):
        pass


def test_a_request_failing_inside_setup_is_a_pipeline_setup_error():
    with pytest.raises(gp.PipelineSetupError, match=r"ReadsUpstreamInSetup \(created at .*\)\.setup\(\) failed: ValueError: no channel axis 2"):
        with gp.build(source() + FailsInProcess() + ReadsUpstreamInSetup()):
            pass
