"""AsType: casts in place or into a new key (the source untouched); the
provided dtype follows; unknown dtypes fail when the node is made."""

import numpy as np
import pytest

import dpowder as gp
from dpowder.errors import PipelineConfigError

RAW = gp.ArrayKey("RAW")
RAW_F = gp.ArrayKey("RAW_FLOAT")
DATA = np.array([[[0, 3, 255]]], dtype=np.uint8)


def run(node, keys):
    src = gp.ArraySource(RAW, gp.Array(DATA, gp.ArraySpec(roi=gp.Roi((0, 0, 0), (1, 1, 3)), voxel_size=(1, 1, 1))))
    with gp.build(src + node) as p:
        request = gp.BatchRequest()
        for key in keys:
            request[key] = gp.ArraySpec(roi=gp.Roi((0, 0, 1), (1, 1, 2)))
        return p.spec, p.request_batch(request)


def test_in_place():
    spec, batch = run(gp.AsType(RAW, np.float32), [RAW])
    assert spec[RAW].dtype == np.float32
    assert batch[RAW].data.dtype == np.float32
    assert batch[RAW].spec.dtype == np.float32
    np.testing.assert_array_equal(batch[RAW].data, [[[3.0, 255.0]]])


def test_into_a_new_key_leaves_the_source():
    spec, batch = run(gp.AsType(RAW, "int8", RAW_F), [RAW, RAW_F])
    assert spec[RAW].dtype == np.uint8 and spec[RAW_F].dtype == np.int8
    np.testing.assert_array_equal(batch[RAW].data, [[[3, 255]]])
    assert batch[RAW].data.dtype == np.uint8
    np.testing.assert_array_equal(batch[RAW_F].data, DATA[..., 1:].astype(np.int8))
    assert batch[RAW_F].spec.roi == gp.Roi((0, 0, 1), (1, 1, 2))


def test_unknown_dtype_is_a_config_error_naming_node_and_key():
    with pytest.raises(PipelineConfigError, match=r"AsType \(created at .*RAW.*'float33'"):
        gp.AsType(RAW, "float33")
