"""``Hdf5PointsSource`` (legacy, import only)."""

from ...nodes.batch_provider import BatchProvider
from ._removed import RemovedAPINode


class Hdf5PointsSource(RemovedAPINode, BatchProvider):
    """gunpowder's legacy source of CREMI synapse points from HDF5.
    Importable and constructible only: using it raises ``RemovedAPIError``.

    Args:

        filename (str): Unused.

        datasets (dict): Unused.

        rois (dict): Unused.
    """

    needs = "the Points API (PointsKeys.PRESYN/POSTSYN, PreSynPoint, PostSynPoint; replaced by Graph in gunpowder 1.1)"
    instead = (
        "the points read into a Graph (nodes with a 'partner_ids' attribute) served by gp.nodes.GPGraphSource, "
        "or CsvPointsSource"
    )

    def __init__(self, filename, datasets, rois):
        self.filename = filename
        self.datasets = datasets
        self.rois = rois
