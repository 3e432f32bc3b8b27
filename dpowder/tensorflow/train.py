"""``tensorflow.Train``: gunpowder's signature; see ``_common`` for status."""

from ..nodes.batch_filter import BatchFilter
from ._common import require_tensorflow


class Train(BatchFilter):
    """Tensorflow implementation of ``gunpowder.nodes.Train`` (meta-graph
    based). Not available in dpowder yet: constructing it raises an
    ``ImportError`` naming what to install, or ``NotImplementedError`` where
    TensorFlow is installed. Use ``dpowder.torch.Train`` or
    ``dpowder.jax.Train``.

    Args:

        graph (``string``): Filename of a tensorflow meta-graph.

        optimizer (``string`` or function): Name of the training operator,
            or a function adding loss and optimizer to the graph.

        loss (``string`` or ``None``): Name of the loss tensor.

        inputs (``dict``, ``string`` -> ``ArrayKey``): Input tensors.

        outputs (``dict``, ``string`` -> ``ArrayKey``): Output tensors.

        gradients (``dict``, ``string`` -> ``ArrayKey``): Tensors whose
            gradients to return.

        summary (``string`` or ``dict``, optional): Summary tensors.

        array_specs (``dict``, optional): Specs of the generated arrays.

        save_every (``int``, optional): Iterations between checkpoints.

        log_dir (``string``, optional): Directory for summaries.

        log_every (``int``, optional): Iterations between summaries.
    """

    def __init__(self, graph, optimizer, loss, inputs, outputs, gradients, summary=None, array_specs=None,
                 save_every=2000, log_dir="./", log_every=1):
        require_tensorflow("Train")
