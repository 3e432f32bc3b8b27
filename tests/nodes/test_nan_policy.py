"""NaNs in the input of Normalize and IntensityAugment never pass silently:
by default a NaNWarning naming node, key, ROI and NaN count, once per node
and key; ``nan_policy="raise"`` (per node, or the module's setting on the
driver, which cluster workers follow) raises a NaNError, a DataSourceError;
``"ignore"`` is silent. NaN voxels stay NaN and do not spread."""

import warnings

import numpy as np
import pytest

import dpowder as gp
from dpowder.errors import DataSourceError
from dpowder import nan_policy
from dpowder.nan_policy import NaNError, NaNWarning

RAW = gp.ArrayKey("RAW")
ROI = gp.Roi((0, 0, 0), (4, 10, 10))
NAN_AT = [(0, 1, 2), (1, 5, 5), (3, 9, 0)]


def nan_data():
    data = np.random.default_rng(1).uniform(0.2, 0.8, (4, 10, 10)).astype(np.float32)
    for index in NAN_AT:
        data[index] = np.nan
    return data


def build_pipeline(node, data=None):
    data = nan_data() if data is None else data
    return gp.ArraySource(RAW, gp.Array(data, gp.ArraySpec(ROI, (1, 1, 1)))) + node


def request(roi=ROI, seed=0):
    return gp.BatchRequest({RAW: gp.ArraySpec(roi)}, random_seed=seed)


@pytest.fixture(autouse=True)
def module_policy():
    previous = nan_policy.get_nan_policy()
    yield
    nan_policy.set_nan_policy(previous)


NODES = {
    "Normalize": lambda **kw: gp.Normalize(RAW, **kw),
    "IntensityAugment": lambda **kw: gp.IntensityAugment(RAW, 0.9, 1.1, -0.05, 0.05, clip=False, **kw),
}


@pytest.mark.parametrize("name", NODES)
def test_default_warns_once_per_node_and_key_with_the_count(name):
    node = NODES[name]()
    with gp.build(build_pipeline(node)) as p:
        with pytest.warns(NaNWarning) as record:
            first = p.request_batch(request())
        messages = [str(w.message) for w in record if issubclass(w.category, NaNWarning)]
        assert len(messages) == 1
        assert messages[0].startswith(f"{name} (created at ")
        assert "RAW holds 3 NaN values (of 400) in the ROI [0:4, 0:10, 0:10] (4, 10, 10)" in messages[0]
        with warnings.catch_warnings():
            warnings.simplefilter("error", NaNWarning)
            # a smaller ROI with one NaN: the same node and key, no second warning
            second = p.request_batch(request(gp.Roi((1, 0, 0), (2, 10, 10)), seed=1))
    out = first[RAW].data
    nan = np.isnan(out)
    assert sorted(map(tuple, np.argwhere(nan))) == NAN_AT, "NaNs stay where they are and do not spread"
    assert np.isnan(second[RAW].data).sum() == 1


def test_intensity_augment_scales_around_the_mean_of_the_other_voxels():
    data = nan_data()
    with gp.build(build_pipeline(gp.IntensityAugment(RAW, 2.0, 2.0, 0.1, 0.1, clip=False), data)) as p:
        with pytest.warns(NaNWarning):
            out = p.request_batch(request())[RAW].data
    finite = ~np.isnan(data)
    mean = data[finite].astype(np.float64).mean()
    np.testing.assert_allclose(out[finite], mean + (data[finite] - mean) * 2.0 + 0.1, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", NODES)
def test_raise_policy_raises_a_typed_error_with_the_facts(name):
    with gp.build(build_pipeline(NODES[name](nan_policy="raise"))) as p:
        with pytest.raises(NaNError, match=r"RAW holds 3 NaN values \(of 400\) in the ROI \[0:4, 0:10, 0:10\]") as info:
            p.request_batch(request())
    assert isinstance(info.value, DataSourceError)


def test_the_error_carries_node_key_and_roi():
    node = gp.Normalize(RAW)
    with pytest.raises(NaNError) as info:
        nan_policy.check_nans(node, RAW, nan_data(), ROI, "raise", node.nan_token)
    assert (info.value.node, info.value.key, info.value.roi) == (node, RAW, ROI)


def test_module_policy_applies_to_nodes_without_their_own():
    nan_policy.set_nan_policy("raise")
    with gp.build(build_pipeline(gp.Normalize(RAW))) as p:
        with pytest.raises(NaNError, match="Normalize .*RAW holds 3 NaN"):
            p.request_batch(request())
    # a node's own policy wins
    with gp.build(build_pipeline(gp.Normalize(RAW, nan_policy="ignore"))) as p:
        with warnings.catch_warnings():
            warnings.simplefilter("error", NaNWarning)
            assert np.isnan(p.request_batch(request())[RAW].data).sum() == 3


def test_the_driver_setting_reaches_cluster_workers(cluster_client):
    nan_policy.set_nan_policy("raise")
    with gp.build(build_pipeline(gp.Normalize(RAW))) as p:
        graph = p.to_dask(request())
    with pytest.raises(NaNError, match="RAW holds 3 NaN"):
        cluster_client.compute(graph).result()


def test_ignore_is_silent_and_data_without_nans_is_never_reported():
    with gp.build(build_pipeline(gp.IntensityAugment(RAW, 0.9, 1.1, 0, 0, clip=False, nan_policy="ignore"))) as p:
        with warnings.catch_warnings():
            warnings.simplefilter("error", NaNWarning)
            p.request_batch(request())
    clean = np.full((4, 10, 10), 0.5, np.float32)
    with gp.build(build_pipeline(gp.Normalize(RAW, nan_policy="raise"), clean)) as p:
        np.testing.assert_array_equal(p.request_batch(request())[RAW].data, clean)


def test_bad_policies_fail_at_construction():
    with pytest.raises(ValueError, match=r"nan_policy must be one of \('warn', 'raise', 'ignore'\), got 'loud'"):
        gp.Normalize(RAW, nan_policy="loud")
    with pytest.raises(ValueError, match="got 'loud'"):
        nan_policy.set_nan_policy("loud")
