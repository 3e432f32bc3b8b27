"""``DvidPartnerAnnotationSource`` (legacy, import only)."""

from ...nodes.batch_provider import BatchProvider
from ._removed import RemovedAPINode


class DvidPartnerAnnotationSource(RemovedAPINode, BatchProvider):
    """gunpowder's legacy source of synapse annotations from DVID.
    Importable and constructible only: using it raises ``RemovedAPIError``.

    Args:

        hostname (str): Unused.

        port (int): Unused.

        uuid (str): Unused.

        datasets (dict, optional): Unused.

        rois (dict, optional): Unused.
    """

    needs = "the Points API (PreSynPoint, PostSynPoint, PointsKeys; replaced by Graph in gunpowder 1.1)"
    instead = "DvidSource for the arrays, and the annotations read into a Graph served by GraphSource or gp.nodes.GPGraphSource"

    def __init__(self, hostname, port, uuid, datasets=None, rois=None):
        self.hostname = hostname
        self.port = port
        self.uuid = uuid
        self.datasets = datasets
        self.rois = rois
