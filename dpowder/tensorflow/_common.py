"""What the tensorflow nodes share beyond ``dpowder.framework_common``:
importing TensorFlow (quietly, only when a node is made), sessions on the
CPU, and finding tensors and operations of a graph by name.

The nodes run gunpowder's TF1 meta-graphs on TensorFlow 2's ``compat.v1``
API: each node builds its own ``tf.Graph`` and ``Session`` (graph mode),
without touching TensorFlow's global eager state, so torch, jax and
tensorflow nodes can share one process.
"""

import logging
import os

from ..errors import PipelineSetupError
from ..framework_common import require_framework


def import_tensorflow(node_name):
    """``tensorflow.compat.v1``, or an ``ImportError`` saying what to install.
    TensorFlow's C++ logs are quietened unless the user set
    ``TF_CPP_MIN_LOG_LEVEL``; its Python logger too, unless configured."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    tf = require_framework("tensorflow", node_name)
    tf_logger = logging.getLogger("tensorflow")
    if tf_logger.level == logging.NOTSET:
        tf_logger.setLevel(logging.ERROR)
    return tf.compat.v1


def session(tf, graph, threads=None):
    """A session of ``graph`` on the CPU (set ``DPOWDER_TENSORFLOW_GPU=1`` to
    let TensorFlow use GPUs), with ``threads`` threads per op if given."""
    kwargs = {}
    if os.environ.get("DPOWDER_TENSORFLOW_GPU", "0") != "1":
        kwargs["device_count"] = {"GPU": 0}
    if threads is not None:
        kwargs.update(intra_op_parallelism_threads=threads, inter_op_parallelism_threads=threads)
    return tf.Session(graph=graph, config=tf.ConfigProto(**kwargs))


def import_meta_graph(tf, node, filename):
    """A new graph holding the meta-graph of ``filename``, and its saver."""
    if not os.path.exists(filename):
        raise PipelineSetupError(f"{node.describe()}: the meta-graph file {filename!r} does not exist")
    graph = tf.Graph()
    with graph.as_default():
        saver = tf.train.import_meta_graph(filename, clear_devices=True)
    return graph, saver


def placeholders(graph):
    """The names of the placeholder tensors of ``graph`` (for messages)."""
    return sorted(op.outputs[0].name for op in graph.get_operations() if op.type == "Placeholder")


def tensor(graph, node, role, name, key=None):
    """The tensor named ``name`` (e.g. ``"raw:0"``) in ``graph``, or a
    ``PipelineSetupError`` naming the node, ``role``, ``name`` and ``key``."""
    what = f"{role} {name!r}" + ("" if key is None else f" ({key})")
    try:
        return graph.get_tensor_by_name(name)
    except (KeyError, ValueError, TypeError) as e:
        raise PipelineSetupError(
            f"{node.describe()}: {what} names no tensor of the graph ({e}); tensor names look like "
            f"'op_name:0'; the graph's placeholders are {placeholders(graph)}"
        ) from None


def element(graph, node, role, name):
    """The tensor or operation named ``name`` in ``graph``, or a
    ``PipelineSetupError``."""
    try:
        return graph.as_graph_element(name, allow_tensor=True, allow_operation=True)
    except (KeyError, ValueError, TypeError) as e:
        raise PipelineSetupError(f"{node.describe()}: {role} {name!r} is not in the graph ({e})") from None
