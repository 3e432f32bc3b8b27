"""``ZeroOutConstSections`` (legacy, import only)."""

from ...nodes.batch_filter import BatchFilter
from ._removed import RemovedAPINode


class ZeroOutConstSections(RemovedAPINode, BatchFilter):
    """gunpowder's legacy node zeroing constant z-sections. Importable and
    constructible only: using it raises ``RemovedAPIError``.

    Args:

        intensities (ArrayKey): Unused.
    """

    needs = "the pre-funlib Roi API (roi.dims(), roi.get_shape())"
    instead = (
        "a BatchFilter of your own whose process sets data[z] = 0 where data[z].min() == data[z].max(), "
        "or DefectAugment for missing sections"
    )

    def __init__(self, intensities):
        self.intensities = intensities
