"""``AddBlobsFromPoints`` (legacy, import only)."""

from ...nodes.batch_filter import BatchFilter
from ._removed import RemovedAPINode


class AddBlobsFromPoints(RemovedAPINode, BatchFilter):
    """gunpowder's legacy node painting blobs around points. Importable and
    constructible only: using it raises ``RemovedAPIError``.

    Args:

        blob_settings (dict): Per blob array, the points key, the
            rasterization and the blob's dtype (unused).
    """

    needs = "the Points API (PointsKey, PointsSpec, batch.points; replaced by Graph in gunpowder 1.1)"
    instead = "RasterizeGraph with RasterizationSettings(radius=..., mode='ball')"

    def __init__(self, blob_settings):
        self.blob_settings = blob_settings
