"""What the tensorflow nodes share: the framework check.

The nodes keep gunpowder's signatures so that pipelines naming them import
and fail clearly. Their TF2 ``compat.v1`` implementation is not written:
tensorflow (a 572 MB wheel, over 2 GB installed with its dependencies) could
not be installed and tested where dpowder is developed, and untested
session code would be worse than a clear error.
"""

from ..framework_common import require_framework


def require_tensorflow(node_name):
    """Raise an error saying what to install, or that the node is missing."""
    require_framework("tensorflow", node_name)
    raise NotImplementedError(
        f"dpowder.tensorflow.{node_name} is not implemented yet (TensorFlow is installed, but dpowder's "
        f"meta-graph nodes are not written); use dpowder.torch or dpowder.jax"
    )
