"""``DefectAugment``: section-wise defects of an intensity array."""
from typing import TYPE_CHECKING

import numpy as np

from .._lazy import LazyModule
from ..array import Array
from ..batch import Batch
from ..batch_request import BatchRequest
from ..coordinate import Coordinate
from ..errors import BatchRequestError, PipelineConfigError, PipelineSetupError
from ..pipeline import Pipeline
from .checks import check_probability, check_provided
from .batch_filter import BatchFilter
from ..engine import record

if TYPE_CHECKING:
    from scipy import ndimage
else:
    # imported when first used, not with dpowder
    ndimage = LazyModule("scipy.ndimage")

MISSING, LOW_CONTRAST, ARTIFACT, DEFORM = 1, 2, 3, 4


class DefectAugment(BatchFilter):
    """Augment intensity arrays section-wise with artifacts like missing
    sections, low-contrast sections, by blending in artifacts drawn from a
    separate source, or by deforming a section.

    Args:

        intensities (:class:`ArrayKey`):

            The key of the array of intensities to modify.

        prob_missing(``float``):
        prob_low_contrast(``float``):
        prob_artifact(``float``):
        prob_deform(``float``):

            Probabilities of having a missing section, low-contrast section, an
            artifact (see param ``artifact_source``) or a deformed slice. The
            sum should not exceed 1. Values in missing sections will be set to
            0.

        contrast_scale (``float``, optional):

            By how much to scale the intensities for a low-contrast section,
            used if ``prob_low_contrast`` > 0.

        artifact_source (:class:`BatchProvider` or ``Pipeline``, optional):

            A pipeline that delivers intensities (via ``artifacts``) and an
            alpha mask (via ``artifacts_mask``, float32 in [0, 1]), used if
            ``prob_artifact`` > 0. It is built with this node and asked, for
            every artifact section, for one section-sized batch (seeded from
            this node's random draws).

        artifacts(:class:`ArrayKey`, optional):

            The key to query ``artifact_source`` for to get the intensities
            of the artifacts.

        artifacts_mask(:class:`ArrayKey`, optional):

            The key to query ``artifact_source`` for to get the alpha mask
            of the artifacts to blend them with ``intensities``.

        deformation_strength (``int``, optional):

            Strength of the slice deformation in voxels, used if
            ``prob_deform`` > 0. The deformation models a fold by shifting the
            section contents towards a randomly oriented line in the section.
            The line itself will be drawn with a value of 0.

        axis (``int``, optional):

            Along which (spatial) axis sections are cut.

        p (``float``, optional):

            Probability of applying the augmentation. Default is 1.0.
    """

    def __init__(
        self,
        intensities,
        prob_missing=0.05,
        prob_low_contrast=0.05,
        prob_artifact=0.0,
        prob_deform=0.0,
        contrast_scale=0.1,
        artifact_source=None,
        artifacts=None,
        artifacts_mask=None,
        deformation_strength=20,
        axis=0,
        p=1.0,
    ):
        probs = (prob_missing, prob_low_contrast, prob_artifact, prob_deform)
        if any(q < 0 for q in probs) or sum(probs) > 1:
            raise PipelineConfigError(
                f"DefectAugment: prob_missing, prob_low_contrast, prob_artifact and prob_deform {probs} "
                f"must be non-negative and sum to at most 1"
            )
        if prob_artifact > 0 and (artifact_source is None or artifacts is None or artifacts_mask is None):
            raise PipelineConfigError(
                f"DefectAugment: prob_artifact={prob_artifact} needs artifact_source, artifacts and "
                f"artifacts_mask (got {artifact_source!r}, {artifacts!r}, {artifacts_mask!r})"
            )
        check_probability("DefectAugment", p)
        self.intensities = intensities
        self.prob_missing = prob_missing
        self.prob_low_contrast = prob_low_contrast
        self.prob_artifact = prob_artifact
        self.prob_deform = prob_deform
        self.contrast_scale = contrast_scale
        self.artifact_source = artifact_source
        self.artifacts = artifacts
        self.artifacts_mask = artifacts_mask
        self.deformation_strength = int(deformation_strength)
        self.axis = axis
        self.p = p

    def setup(self):
        check_provided(self, self.intensities)
        spec = self.spec[self.intensities]
        if not 0 <= self.axis < len(spec.voxel_size):
            raise PipelineSetupError(f"{self.describe()}: axis {self.axis} is not a spatial axis of {self.intensities} (voxel size {spec.voxel_size})")
        self.updates(self.intensities, spec)
        self.enable_autoskip()
        if self.artifact_source is not None:
            pipeline = self.artifact_source
            if not isinstance(pipeline, Pipeline):
                pipeline = Pipeline(pipeline)
            pipeline.setup(scheduler=None)
            self.artifact_pipeline = pipeline
            if self.prob_artifact > 0:
                for key in (self.artifacts, self.artifacts_mask):
                    if key not in pipeline.spec:
                        raise PipelineSetupError(f"{self.describe()}: artifact_source does not provide {key}")
                    if pipeline.spec[key].voxel_size != spec.voxel_size:
                        raise PipelineSetupError(
                            f"{self.describe()}: {key} of artifact_source has voxel size "
                            f"{pipeline.spec[key].voxel_size}, {self.intensities} has {spec.voxel_size}; "
                            f"they must be equal to blend"
                        )

    def teardown(self):
        if self.artifact_source is not None and "artifact_pipeline" in self.__dict__:
            self.artifact_pipeline.internal_teardown()

    def prepare(self, request):
        self.kinds = None
        if not self.rng.random() < self.p:
            return None
        spec = request[self.intensities]
        voxel_size = self.spec[self.intensities].voxel_size
        shape = spec.roi.shape / voxel_size
        r = self.rng.random(shape[self.axis])
        thresholds = np.cumsum([self.prob_missing, self.prob_low_contrast, self.prob_artifact, self.prob_deform])
        kinds = np.searchsorted(thresholds, r, side="right") + 1
        kinds[kinds > DEFORM] = 0
        self.kinds = kinds
        self.artifact_seeds = self.rng.integers(0, 2**62, size=len(kinds))
        deforms = np.flatnonzero(kinds == DEFORM)
        # a fold: a line across the (grown) section, fixed at two opposite sides
        section_shape = [s + 2 * self.deformation_strength for d, s in enumerate(shape) if d != self.axis]
        if len(section_shape) != 2 and len(deforms):
            raise BatchRequestError(f"{self.describe()}: deformed sections need 3D {self.intensities}, got ROI {spec.roi}")
        fixed_x = self.rng.random(len(deforms)) < 0.5
        ends = [
            self.rng.integers(1, (section_shape[1] if fx else section_shape[0]) - 2, size=2) for fx in fixed_x
        ] if len(deforms) else []
        self.deform_lines = [(int(c), bool(fx), tuple(int(e) for e in ee)) for c, fx, ee in zip(deforms, fixed_x, ends)]
        if len(deforms):
            growth = Coordinate(0 if d == self.axis else voxel_size[d] * self.deformation_strength for d in range(len(voxel_size)))
            spec.roi = spec.roi.grow(growth, growth)
        deps = BatchRequest()
        deps[self.intensities] = spec.copy()
        return deps

    def process(self, batch, request):
        if self.kinds is None or not self.kinds.any():
            return None
        array = batch[self.intensities]
        data = np.array(array.data, copy=True)
        lead = data.ndim - len(array.spec.voxel_size)
        axis = lead + self.axis
        sections = np.moveaxis(data, axis, 0)
        for c in np.flatnonzero(self.kinds == MISSING):
            sections[c] = 0
        for c in np.flatnonzero(self.kinds == LOW_CONTRAST):
            mean = sections[c].mean()
            sections[c] = (sections[c] - mean) * self.contrast_scale + mean
        for c in np.flatnonzero(self.kinds == ARTIFACT):
            sections[c] = self._blend_artifact(sections[c], array.spec.voxel_size, int(self.artifact_seeds[c]))
        for c, fixed_x, ends in self.deform_lines:
            sections[c] = self._deform_section(sections[c], fixed_x, ends, bool(array.spec.interpolatable))
        spec = array.spec.copy()
        output = Batch()
        output[self.intensities] = Array._make(data, spec, array.attrs).crop(request[self.intensities].roi)
        return output

    def _artifact_provider(self):
        """A private, linked copy of the artifact pipeline (nodes travel
        without their upstream links; concurrent tasks never share one)."""

        return record.relink(*record.pipeline_tree(self.artifact_pipeline))

    def _blend_artifact(self, section, voxel_size, seed):
        from ..engine.execute import run_inline

        lead = section.ndim - (len(voxel_size) - 1)
        shape = list(section.shape[lead:])
        shape.insert(self.axis, 1)
        request = BatchRequest(random_seed=seed)
        request.add(self.artifacts, Coordinate(shape) * voxel_size, voxel_size=voxel_size)
        request.add(self.artifacts_mask, Coordinate(shape) * voxel_size, voxel_size=voxel_size)
        # the artifact pipeline runs here, in this task
        artifacts = run_inline(self._artifact_provider(), request)
        alpha = np.asarray(artifacts[self.artifacts_mask].data)
        raw = np.asarray(artifacts[self.artifacts].data)
        if alpha.dtype != np.float32 or alpha.min() < 0 or alpha.max() > 1:
            raise BatchRequestError(
                f"{self.describe()}: {self.artifacts_mask} must be float32 in [0, 1], got {alpha.dtype} "
                f"in [{alpha.min()}, {alpha.max()}]"
            )
        alpha = np.squeeze(alpha, axis=alpha.ndim - len(voxel_size) + self.axis)
        raw = np.squeeze(raw, axis=raw.ndim - len(voxel_size) + self.axis)
        return section * (1.0 - alpha) + raw * alpha

    def _deform_section(self, section, fixed_x, ends, interpolatable):
        shape = section.shape[-2:]
        if fixed_x:
            x0, y0, x1, y1 = 0, ends[0], shape[0] - 1, ends[1]
        else:
            x0, y0, x1, y1 = ends[0], 0, ends[1], shape[1] - 1
        line_mask = np.zeros(shape, dtype=bool)
        from skimage.draw import line  # scikit-image imports in ~1 s: on first use

        rr, cc = line(x0, y0, x1, y1)
        line_mask[rr, cc] = True
        direction = np.array([x1 - x0, y1 - y0], dtype=np.float64)
        direction /= np.linalg.norm(direction)
        normal = np.array([-direction[1], direction[0]])
        # the line cuts the section in two; each side moves towards it
        components, _ = ndimage.label(~line_mask)
        negative = components[0, 0] if fixed_x else components[-1, -1]
        positive = components[-1, -1] if fixed_x else components[0, 0]
        sign = np.where(components == positive, 1.0, np.where(components == negative, -1.0, 0.0))
        rows, cols = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
        flow_rows = rows + sign * self.deformation_strength * normal[0]
        flow_cols = cols + sign * self.deformation_strength * normal[1]
        order = 3 if interpolatable else 0
        flat = section.reshape((-1,) + shape)
        out = np.stack([ndimage.map_coordinates(s, (flow_rows, flow_cols), mode="constant", order=order) for s in flat])
        out = np.clip(out, 0.0, 1.0)
        out[:, ndimage.binary_dilation(line_mask, iterations=10)] = 0
        return out.reshape(section.shape)
