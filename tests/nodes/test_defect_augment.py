"""DefectAugment: missing sections are zero, low-contrast sections are
scaled about their mean, artifacts are alpha-blended from the artifact
pipeline (asked inside the task), deformed sections keep the ROI; the same
seed gives the same batch anywhere."""

import numpy as np
import pytest

import dpowder as gp
from tests.contract import NodeContract

RAW, ARTIFACTS, ALPHA = gp.ArrayKey("RAW"), gp.ArrayKey("ARTIFACTS"), gp.ArrayKey("ALPHA")
VOXEL = gp.Coordinate((10, 4, 4))


def raw_source(shape=(20, 30, 30)):
    data = np.random.default_rng(0).random(shape).astype(np.float32)
    roi = gp.Roi((0, 0, 0), gp.Coordinate(shape) * VOXEL)
    return gp.ArraySource(RAW, gp.Array(data, gp.ArraySpec(roi=roi, voxel_size=VOXEL, interpolatable=True))), data


def artifact_source(shape=(10, 60, 60)):
    """Artifacts of value 0.8 + z / 1000 at alpha 0.25, behind a
    RandomLocation (so the nested request's seed matters)."""
    roi = gp.Roi((0, 0, 0), gp.Coordinate(shape) * VOXEL)
    values = (0.8 + np.arange(shape[0])[:, None, None] / 1000 + np.zeros(shape)).astype(np.float32)
    alpha = np.full(shape, 0.25, dtype=np.float32)
    return (
        gp.ArraySource(ARTIFACTS, gp.Array(values, gp.ArraySpec(roi=roi, voxel_size=VOXEL))),
        gp.ArraySource(ALPHA, gp.Array(alpha, gp.ArraySpec(roi=roi, voxel_size=VOXEL))),
    ) + gp.MergeProvider() + gp.RandomLocation()


def request_raw(seed=3):
    request = gp.BatchRequest(random_seed=seed)
    request[RAW] = gp.ArraySpec(roi=gp.Roi((20, 20, 20), (100, 80, 80)))
    return request


def run(augment, seed=3):
    source, data = raw_source()
    with gp.build(source + augment) as p:
        return p.request_batch(request_raw(seed))[RAW].data, data[2:12, 5:25, 5:25]


def test_missing_sections_are_zero():
    out, _ = run(gp.DefectAugment(RAW, prob_missing=1.0, prob_low_contrast=0))
    assert out.shape == (10, 20, 20) and not out.any()


def test_low_contrast_sections_are_scaled_about_their_mean():
    out, original = run(gp.DefectAugment(RAW, prob_missing=0, prob_low_contrast=1.0, contrast_scale=0.5))
    mean = original.mean(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(out, (original - mean) * 0.5 + mean, rtol=1e-6)


def test_artifacts_are_blended_from_the_artifact_pipeline():
    augment = gp.DefectAugment(
        RAW, prob_missing=0, prob_low_contrast=0, prob_artifact=1.0,
        artifact_source=artifact_source(), artifacts=ARTIFACTS, artifacts_mask=ALPHA,
    )
    out, original = run(augment)
    artifact = (out - 0.75 * original) / 0.25
    # one artifact section per section, constant within it, from the source
    np.testing.assert_allclose(artifact - artifact[:, :1, :1], 0, atol=1e-5)
    candidates = 0.8 + np.arange(10) / 1000
    assert np.abs(artifact[:, :1, 0] - candidates).min(axis=1).max() < 1e-4
    # each section asks the artifact pipeline with its own seed
    assert len(np.unique(np.round(artifact[:, 0, 0], 4))) > 1


def test_deformed_sections_keep_the_roi_and_draw_a_zero_line():
    out, original = run(gp.DefectAugment(RAW, prob_missing=0, prob_low_contrast=0, prob_deform=1.0, deformation_strength=3))
    assert out.shape == original.shape
    assert all((section == 0).any() for section in out)
    assert not np.array_equal(out, original)


def test_probabilities_above_one_fail_at_construction():
    with pytest.raises(gp.PipelineSetupError, match="sum to at most 1"):
        gp.DefectAugment(RAW, prob_missing=0.6, prob_low_contrast=0.6)
    with pytest.raises(gp.PipelineSetupError, match="artifact_source"):
        gp.DefectAugment(RAW, prob_artifact=0.5)


class TestDefectAugmentContract(NodeContract):
    def make_pipeline(self):
        source, _ = raw_source()
        augment = gp.DefectAugment(
            RAW, prob_missing=0.2, prob_low_contrast=0.2, prob_artifact=0.3, prob_deform=0.2,
            # small in-memory artifacts: they travel with the node
            artifact_source=artifact_source((4, 30, 30)), artifacts=ARTIFACTS, artifacts_mask=ALPHA,
            deformation_strength=3,
        )
        return source + gp.Pad(RAW, None) + augment, request_raw()
