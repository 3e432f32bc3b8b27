"""NoiseAugment: scikit-image's random_noise, seeded from the request's
seed: the documented statistics per mode, clipping, p, float arrays only."""

import numpy as np
import pytest

import dpowder as gp
from tests.contract import NodeContract

RAW = gp.ArrayKey("RAW")
ROI = gp.Roi((0, 0), (100, 100))
DATA = np.full((100, 100), 0.5, dtype=np.float32)


def pipeline(augment, data=DATA):
    return gp.ArraySource(RAW, gp.Array(data, gp.ArraySpec(ROI, (1, 1)))) + augment


def make_request(seed=0):
    return gp.BatchRequest({RAW: gp.ArraySpec(ROI)}, random_seed=seed)


def noisy(augment, seed=0, data=DATA):
    with gp.build(pipeline(augment, data)) as p:
        return p.request_batch(make_request(seed))[RAW].data


def test_gaussian_noise_has_the_given_variance():
    out = noisy(gp.NoiseAugment(RAW, mode="gaussian", var=0.01, clip=False))
    assert out.dtype == np.float32
    assert abs(out.mean() - 0.5) < 0.005
    assert abs(out.std() - 0.1) < 0.005


@pytest.mark.parametrize("mode,value", [("salt", 1.0), ("pepper", 0.0)])
def test_salt_and_pepper_set_the_given_amount(mode, value):
    out = noisy(gp.NoiseAugment(RAW, mode=mode, amount=0.2))
    assert set(np.unique(out)) == {0.5, value}
    assert abs((out == value).mean() - 0.2) < 0.01


@pytest.mark.parametrize("mode", ["gaussian", "localvar", "poisson", "salt", "pepper", "s&p", "speckle"])
def test_every_mode_is_seeded_by_the_request(mode):
    a = noisy(gp.NoiseAugment(RAW, mode=mode), seed=1)
    b = noisy(gp.NoiseAugment(RAW, mode=mode), seed=1)
    c = noisy(gp.NoiseAugment(RAW, mode=mode), seed=2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert not np.array_equal(a, DATA)
    assert a.min() >= 0 and a.max() <= 1, "clip keeps the range"


def test_p_zero_leaves_the_data_alone():
    np.testing.assert_array_equal(noisy(gp.NoiseAugment(RAW, p=0.0)), DATA)


def test_bad_mode_and_seed_arguments_fail_at_once():
    with pytest.raises(gp.PipelineSetupError, match="mode"):
        gp.NoiseAugment(RAW, mode="blur")
    with pytest.raises(gp.PipelineSetupError, match="seed"):
        gp.NoiseAugment(RAW, seed=3)


def test_integer_array_fails_at_build_naming_node_and_key():
    with pytest.raises(gp.PipelineSetupError, match=r"NoiseAugment \(created at .*RAW.*uint8"):
        with gp.build(pipeline(gp.NoiseAugment(RAW), DATA.astype(np.uint8))):
            pass


class TestNoiseAugmentContract(NodeContract):
    def make_pipeline(self):
        return pipeline(gp.NoiseAugment(RAW, mode="s&p")), make_request()
