"""``AddGtMaskExclusiveZone`` (legacy, import only)."""

from ...nodes.batch_filter import BatchFilter
from ._removed import RemovedAPINode


class AddGtMaskExclusiveZone(RemovedAPINode, BatchFilter):
    """gunpowder's legacy node masking a zone around the ON regions of a
    binary map. Importable and constructible only: using it raises
    ``RemovedAPIError``.

    Args:

        EZ_masks_to_binary_map (dict): From the exclusive-zone mask to create
            to its binary map (unused).

        gaussian_sigma_for_zone (float, optional): Unused.

        rasterization_setting (RasterizationSettings, optional): Unused.
    """

    needs = (
        "the pre-1.0 request and spec API (request.arrays, get_spec(), RasterizationSettings.marker_size_voxel) "
        "and an old signature of enlarge_binary_map"
    )
    instead = (
        "dpowder.morphology.enlarge_binary_map(binary_map, radius, voxel_size, ring_fraction=...) in a BatchFilter "
        "of your own, or RasterizeGraph with RasterizationSettings(radius=..., inner_radius_fraction=...)"
    )

    def __init__(self, EZ_masks_to_binary_map, gaussian_sigma_for_zone=1, rasterization_setting=None):
        self.EZ_masks_to_binary_map = EZ_masks_to_binary_map
        self.gaussian_sigma_for_zone = gaussian_sigma_for_zone
        self.rasterization_setting = rasterization_setting
