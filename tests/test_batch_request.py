"""BatchRequest: centring of added ROIs, updates, merges, seeds."""

import copy

import pytest

import dpowder as gp

A = gp.ArrayKey("A")
B = gp.ArrayKey("B")
G = gp.GraphKey("G")


def test_add_centres_smaller_rois_in_the_largest():
    request = gp.BatchRequest()
    request.add(A, (100, 40, 40), voxel_size=(10, 4, 4))
    request.add(B, (20, 8, 8))
    request.add(G, (60, 20, 20))
    assert request[A].roi == gp.Roi((0, 0, 0), (100, 40, 40))
    assert request[B].roi == gp.Roi((40, 16, 16), (20, 8, 8))
    assert request[G].roi == gp.Roi((20, 10, 10), (60, 20, 20))
    assert request[A].voxel_size == gp.Coordinate(10, 4, 4)


def test_add_recentres_when_a_larger_roi_comes_later():
    request = gp.BatchRequest()
    request.add(B, (20, 8))
    request.add(A, (100, 40))
    assert request[A].roi == gp.Roi((0, 0), (100, 40))
    assert request[B].roi == gp.Roi((40, 16), (20, 8))


def test_add_placeholder_and_directed():
    request = gp.BatchRequest()
    request.add(A, (10, 10), placeholder=True)
    request.add(G, (10, 10), directed=True)
    assert request[A].placeholder
    assert request[G].directed is True
    request.remove_placeholders()
    assert A not in request and G in request


def test_constructor_dict_seed_and_del():
    request = gp.BatchRequest({A: gp.ArraySpec(gp.Roi((0,), (10,)))}, random_seed=42)
    assert request.random_seed == 42
    assert A in request and len(request) == 1
    del request[A]
    assert A not in request and len(request) == 0


def test_random_seed_is_drawn_once_and_copied():
    request = gp.BatchRequest()
    seed = request.random_seed
    assert request.random_seed == seed
    assert request.copy().random_seed == seed
    assert copy.deepcopy(request).random_seed == seed


def test_update_with_unions_rois_and_adds_keys():
    request = gp.BatchRequest(random_seed=3)
    request[A] = gp.ArraySpec(gp.Roi((0, 0), (10, 10)))
    other = gp.BatchRequest()
    other[A] = gp.ArraySpec(gp.Roi((5, 5), (10, 10)), voxel_size=(1, 1))
    other[B] = gp.ArraySpec(gp.Roi((0, 0), (2, 2)))
    updated = request.update_with(other)
    assert updated[A].roi == gp.Roi((0, 0), (15, 15))
    assert updated[A].voxel_size == gp.Coordinate(1, 1)
    assert updated[B].roi == gp.Roi((0, 0), (2, 2))
    assert updated.random_seed == 3
    assert request[A].roi == gp.Roi((0, 0), (10, 10)), "update_with must not change the original"


def test_merge_replaces_specs():
    request = gp.BatchRequest()
    request[A] = gp.ArraySpec(gp.Roi((0,), (10,)))
    other = gp.BatchRequest()
    other[A] = gp.ArraySpec(gp.Roi((5,), (2,)))
    merged = request.merge(other)
    assert merged[A].roi == gp.Roi((5,), (2,))


def test_copy_is_independent():
    request = gp.BatchRequest()
    request[A] = gp.ArraySpec(gp.Roi((0,), (10,)))
    copied = request.copy()
    copied[A].roi = gp.Roi((1,), (2,))
    del copied[A]
    assert request[A].roi == gp.Roi((0,), (10,))


def test_wrong_spec_type_for_key_is_an_error():
    request = gp.BatchRequest()
    with pytest.raises(TypeError, match="ArraySpec"):
        request[A] = gp.GraphSpec(gp.Roi((0,), (1,)))
    with pytest.raises(TypeError, match="GraphSpec"):
        request[G] = gp.ArraySpec(gp.Roi((0,), (1,)))


def test_provider_spec_rois_and_lcm_voxel_size():
    spec = gp.ProviderSpec()
    spec[A] = gp.ArraySpec(gp.Roi((0, 0), (10, 10)), voxel_size=(2, 3))
    spec[B] = gp.ArraySpec(gp.Roi((5, 5), (10, 10)), voxel_size=(4, 1))
    assert spec.get_total_roi() == gp.Roi((0, 0), (15, 15))
    assert spec.get_common_roi() == gp.Roi((5, 5), (5, 5))
    assert spec.get_lcm_voxel_size() == gp.Coordinate(4, 3)


def test_a_roi_becomes_a_spec_by_key():
    request = gp.BatchRequest()
    request[A] = gp.Roi((0, 0), (10, 10))
    request[G] = gp.Roi((5, 5), (2, 2))
    assert request[A] == gp.ArraySpec(roi=gp.Roi((0, 0), (10, 10)))
    assert isinstance(request[G], gp.GraphSpec) and request[G].roi == gp.Roi((5, 5), (2, 2))
    constructed = gp.BatchRequest({A: gp.Roi((0,), (4,))}, random_seed=1)
    assert constructed[A] == gp.ArraySpec(roi=gp.Roi((0,), (4,)))
    spec = gp.ProviderSpec()
    spec[B] = gp.Roi((0,), (4,))
    assert spec[B] == gp.ArraySpec(roi=gp.Roi((0,), (4,)))


def test_specs_are_stored_as_copies():
    spec = gp.ArraySpec(gp.Roi((0,), (10,)), voxel_size=(1,))
    request = gp.BatchRequest()
    request[A] = spec
    spec.roi = gp.Roi((0,), (2,))
    assert request[A].roi == gp.Roi((0,), (10,))
    provider_spec = gp.ProviderSpec({A: spec})
    assert provider_spec[A] is not spec and provider_spec[A] == spec


def test_a_bad_key_or_spec_is_an_assertion_error_as_in_gunpowder():
    request = gp.BatchRequest()
    with pytest.raises(AssertionError, match="ArraySpec"):
        request[A] = gp.GraphSpec(gp.Roi((0,), (1,)))
    with pytest.raises(AssertionError, match="ArrayKey or GraphKey"):
        request["A"] = gp.ArraySpec(gp.Roi((0,), (1,)))
    with pytest.raises(AssertionError, match="Only ArraySpec"):
        request[A] = (0, 10)


def test_a_roi_in_prepare_dependencies_becomes_a_spec():
    import numpy as np

    raw = gp.ArrayKey("RAW_FOR_ROI_DEPS")
    out = gp.ArrayKey("OUT_FOR_ROI_DEPS")

    class Grow(gp.BatchFilter):
        """Provides OUT from RAW one voxel larger on every side."""

        def setup(self):
            self.provides(out, self.spec[raw].copy())

        def prepare(self, request):
            deps = gp.BatchRequest()
            deps[raw] = request[out].roi.grow((1, 1), (1, 1))
            return deps

        def process(self, batch, request):
            result = gp.Batch()
            spec = batch[raw].spec.copy()
            spec.roi = request[out].roi
            result[out] = gp.Array(batch[raw].data[1:-1, 1:-1].copy(), spec)
            return result

    data = np.arange(100, dtype=np.float32).reshape(10, 10)
    source = gp.ArraySource(raw, gp.Array(data, gp.ArraySpec(gp.Roi((0, 0), (10, 10)), voxel_size=(1, 1))))
    request = gp.BatchRequest(random_seed=2)
    request[out] = gp.Roi((2, 3), (2, 2))
    with gp.build(source + Grow()) as pipeline:
        batch = pipeline.request_batch(request)
    np.testing.assert_array_equal(batch[out].data, [[23, 24], [33, 34]])
    assert batch[out].spec.roi == gp.Roi((2, 3), (2, 2))
    assert raw not in batch
