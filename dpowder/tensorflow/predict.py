"""``tensorflow.Predict``: gunpowder's signature; see ``_common`` for status."""

from ..nodes.batch_filter import BatchFilter
from ._common import require_tensorflow


class Predict(BatchFilter):
    """Tensorflow implementation of ``gunpowder.nodes.Predict``. Not
    available in dpowder yet: constructing it raises an ``ImportError``
    naming what to install, or ``NotImplementedError`` where TensorFlow is
    installed. Use ``dpowder.torch.Predict`` or ``dpowder.jax.Predict``.

    Args:

        checkpoint (``string``): Basename of a tensorflow checkpoint.

        inputs (``dict``, ``string`` -> ``ArrayKey``): Input tensors.

        outputs (``dict``, ``string`` -> ``ArrayKey``): Output tensors.

        array_specs (``dict``, optional): Specs of the generated arrays.

        graph (``string``, optional): A meta-graph to use instead.

        skip_empty (``bool``, optional): Skip all-zero inputs.

        max_shared_memory (``int``, optional): Bytes of shared memory.
    """

    def __init__(self, checkpoint, inputs, outputs, array_specs=None, graph=None, skip_empty=False,
                 max_shared_memory=1024 * 1024 * 1024):
        require_tensorflow("Predict")
