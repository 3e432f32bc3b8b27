"""RandomProvider: relays each request to one upstream provider, with the
given probabilities; records the choice; rejects probabilities that cannot be
normalized."""

import numpy as np
import pytest

import dpowder as gp
from tests.contract import NodeContract

RAW = gp.ArrayKey("RAW")
CHOICE = gp.ArrayKey("CHOICE")
ROI = gp.Roi((0, 0), (4, 4))


def providers(n=3):
    return tuple(
        gp.ArraySource(RAW, gp.Array(np.full((4, 4), i, dtype=np.uint8), gp.ArraySpec(ROI, (1, 1))))
        for i in range(n)
    )


def make_request(seed=0):
    request = gp.BatchRequest(random_seed=seed)
    request[RAW] = gp.ArraySpec(gp.Roi((1, 1), (2, 2)))
    request[CHOICE] = gp.ArraySpec(nonspatial=True)
    return request


def test_batch_comes_from_the_recorded_provider_with_the_given_frequencies():
    pipeline = providers() + gp.RandomProvider(probabilities=[1, 2, 5], random_provider_key=CHOICE)
    choices = []
    with gp.build(pipeline) as p:
        for seed in range(400):
            batch = p.request_batch(make_request(seed))
            choice = int(batch[CHOICE].data)
            np.testing.assert_array_equal(batch[RAW].data, np.full((2, 2), choice, np.uint8))
            assert batch[RAW].spec.roi == gp.Roi((1, 1), (2, 2))
            choices.append(choice)
    frequencies = np.bincount(choices, minlength=3) / 400
    np.testing.assert_allclose(frequencies, [1 / 8, 2 / 8, 5 / 8], atol=0.06)


def test_default_is_uniform():
    with gp.build(providers() + gp.RandomProvider(random_provider_key=CHOICE)) as p:
        choices = [int(p.request_batch(make_request(seed))[CHOICE].data) for seed in range(300)]
    np.testing.assert_allclose(np.bincount(choices, minlength=3) / 300, [1 / 3] * 3, atol=0.07)


def test_zero_probability_is_never_chosen():
    with gp.build(providers() + gp.RandomProvider(probabilities=[0, 1, 0], random_provider_key=CHOICE)) as p:
        assert {int(p.request_batch(make_request(seed))[CHOICE].data) for seed in range(20)} == {1}


def test_only_common_keys_are_provided():
    other = gp.ArrayKey("OTHER")
    extra = gp.ArraySource(other, gp.Array(np.zeros((4, 4), np.uint8), gp.ArraySpec(ROI, (1, 1))))
    a, b = providers(2)
    with gp.build(((a, extra) + gp.MergeProvider(), b) + gp.RandomProvider()) as p:
        assert RAW in p.spec and other not in p.spec


@pytest.mark.parametrize("probabilities", [[0, 0, 0], [1, -1, 1], [1, float("nan"), 1], []])
def test_probabilities_that_do_not_sum_sensibly_fail_at_once(probabilities):
    with pytest.raises(gp.PipelineSetupError, match="probabilities"):
        gp.RandomProvider(probabilities=probabilities)


def test_one_probability_per_provider_or_fail_at_build():
    with pytest.raises(gp.PipelineSetupError, match=r"RandomProvider \(created at .*2 probabilities given for 3"):
        with gp.build(providers() + gp.RandomProvider(probabilities=[1, 1])):
            pass


class TestRandomProviderContract(NodeContract):
    def make_pipeline(self):
        return providers() + gp.RandomProvider(probabilities=[1, 1, 2], random_provider_key=CHOICE), make_request()

    def bad_requests(self):
        request = gp.BatchRequest({RAW: gp.ArraySpec(gp.Roi((0, 0), (8, 8)))})
        return [(request, "RAW")]
