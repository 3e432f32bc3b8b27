"""``AddNonsymmetricAffinities`` (legacy, import only)."""

from ...nodes.batch_filter import BatchFilter
from ._removed import RemovedAPINode


class AddNonsymmetricAffinities(RemovedAPINode, BatchFilter):
    """gunpowder's legacy node computing affinities between two arrays.
    Importable and constructible only: using it raises ``RemovedAPIError``.

    Args:

        affinity_vectors (list of tuple): Unused.

        array_key_1 (ArrayKey): Unused.

        array_key_2 (ArrayKey): Unused.

        affinity_array_key_1 (ArrayKey): Unused.

        affinity_array_key_2 (ArrayKey): Unused.
    """

    needs = "the pre-funlib Roi API (roi.get_shape()) and request.points_specs"
    instead = "AddAffinities (one per direction, with labels_mask for the second array)"

    def __init__(self, affinity_vectors, array_key_1, array_key_2, affinity_array_key_1, affinity_array_key_2):
        self.affinity_vectors = affinity_vectors
        self.array_key_1 = array_key_1
        self.array_key_2 = array_key_2
        self.affinity_array_key_1 = affinity_array_key_1
        self.affinity_array_key_2 = affinity_array_key_2
