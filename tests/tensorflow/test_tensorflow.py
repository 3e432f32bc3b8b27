"""tensorflow.Train and tensorflow.Predict on TF1 meta-graphs (TensorFlow 2's
compat.v1 API): training learns a learnable answer, returns outputs and
gradients where requested, resumes from gunpowder-named checkpoints, and
Predict runs a trained checkpoint exactly as the graph does. The TensorFlow
tests are skipped where it is missing (it is the optional extra
dpowder[tensorflow]); constructing a node then says what to install."""

import sys

import dask
import numpy as np
import pytest

import dpowder as gp
from dpowder.errors import PipelineConfigError

RAW = gp.ArrayKey("TF_RAW")
TARGET = gp.ArrayKey("TF_TARGET")
PRED = gp.ArrayKey("TF_PRED")
GRAD = gp.ArrayKey("TF_GRAD")
VOXEL = gp.Coordinate(2, 2)
IN_ROI = gp.Roi((20, 20), (48, 48))  # 24 x 24 voxels
OUT_ROI = gp.Roi((22, 22), (44, 44))  # the 22 x 22 voxels of a valid 3 x 3 convolution, centred


@pytest.mark.parametrize("make", [
    lambda: gp.tensorflow.Train("graph", "optimizer", "loss:0", {}, {}, {}),
    lambda: gp.tensorflow.Predict("checkpoint", {}, {}),
])
def test_constructing_a_tensorflow_node_without_tensorflow_says_what_to_install(make, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # as if it were not installed
    with pytest.raises(ImportError, match=r"needs TensorFlow, which is not installed: pip install dpowder\[tensorflow"):
        make()


@pytest.fixture(scope="module")
def tf():
    return pytest.importorskip("tensorflow", reason="pip install dpowder[tensorflow]").compat.v1


def build_net(tf, minimize=True):
    """A TF1 graph: logits = conv3x3(raw - 0.5) + bias (valid), a sigmoid
    cross-entropy loss against target, and (with ``minimize``) plain
    gradient descent as the op "optimizer"."""
    graph = tf.Graph()
    with graph.as_default():
        raw = tf.placeholder(tf.float32, shape=(24, 24), name="raw")
        target = tf.placeholder(tf.float32, shape=(22, 22), name="target")
        kernel = tf.get_variable("kernel", shape=(3, 3, 1, 1), initializer=tf.zeros_initializer())
        bias = tf.get_variable("bias", shape=(), initializer=tf.zeros_initializer())
        conv = tf.nn.conv2d(tf.reshape(raw - 0.5, (1, 24, 24, 1)), kernel, strides=1, padding="VALID")
        logits = tf.identity(tf.reshape(conv, (22, 22)) + bias, name="logits")
        tf.sigmoid(logits, name="pred")
        loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=target, logits=logits), name="loss")
        if minimize:
            tf.train.GradientDescentOptimizer(20.0).minimize(loss, name="optimizer")
    return graph


def export(tf, path, minimize=True):
    with build_net(tf, minimize).as_default():
        tf.train.export_meta_graph(filename=str(path) + ".meta")
    return str(path)


class NoiseSource(gp.BatchProvider):
    """RAW: uniform noise from the request's seed; TARGET: RAW > 0.5 at the
    same voxels (TARGET's ROI must lie in RAW's, one voxel in from its
    border, where the valid convolution's output lies)."""

    def setup(self):
        roi = gp.Roi((0, 0), (200, 200))
        self.provides(RAW, gp.ArraySpec(roi=roi, voxel_size=VOXEL, dtype=np.float32, interpolatable=True))
        self.provides(TARGET, gp.ArraySpec(roi=roi, voxel_size=VOXEL, dtype=np.float32, interpolatable=False))

    def provide(self, request):
        roi = request[RAW].roi
        raw = self.rng.random(tuple(roi.shape / VOXEL), dtype=np.float32)
        batch = gp.Batch()
        batch[RAW] = gp.Array(raw, gp.ArraySpec(roi=roi, voxel_size=VOXEL, dtype=np.float32, interpolatable=True))
        if TARGET in request:
            target = (raw > 0.5).astype(np.float32)[1:-1, 1:-1]
            spec = gp.ArraySpec(roi=request[TARGET].roi, voxel_size=VOXEL, dtype=np.float32, interpolatable=False)
            batch[TARGET] = gp.Array(target, spec)
        return batch


def train_request(seed=1, keys=(PRED, GRAD)):
    r = gp.BatchRequest(random_seed=seed)
    r[RAW] = gp.ArraySpec(roi=IN_ROI)
    r[TARGET] = gp.ArraySpec(roi=OUT_ROI)
    for key in keys:
        r[key] = gp.ArraySpec(roi=OUT_ROI)
    return r


def train(graph, n, optimizer="optimizer", loss="loss:0", keys=(PRED, GRAD), **kwargs):
    node = gp.tensorflow.Train(
        graph, optimizer, loss, inputs={"raw:0": RAW, "target:0": TARGET}, outputs={"pred:0": PRED},
        gradients={"logits:0": GRAD}, **kwargs,
    )
    pipeline = NoiseSource() + node
    losses = []
    with dask.config.set({"dpowder.stream.workers": 0}), gp.build(pipeline):
        for _ in range(n):
            batch = pipeline.request_batch(train_request(keys=keys))
            losses.append(batch.loss)
    return node, losses, batch


def test_training_drives_the_loss_down_and_returns_outputs_and_gradients(tf, tmp_path):
    _, losses, batch = train(export(tf, tmp_path / "net"), 30)
    assert losses[0] == pytest.approx(np.log(2), rel=1e-6)  # zero-initialised variables
    assert losses[-1] < 0.6 * losses[0]
    assert batch.iteration == 30
    for key in (PRED, GRAD):
        assert batch[key].spec.roi == OUT_ROI
        assert batch[key].spec.voxel_size == VOXEL
        assert batch[key].data.shape == (22, 22)
    # d(mean sigmoid cross-entropy)/d(logits), from the same forward pass as PRED
    expected = (batch[PRED].data - batch[TARGET].data) / 22**2
    np.testing.assert_allclose(batch[GRAD].data, expected, atol=1e-8)


def test_restart_resumes_from_the_latest_checkpoint_at_the_right_iteration(tf, tmp_path):
    _, straight, _ = train(export(tf, tmp_path / "a" / "net"), 6)
    graph = export(tf, tmp_path / "b" / "net")
    _, first, _ = train(graph, 4, save_every=2)
    node, second, batch = train(graph, 2, save_every=2)
    assert node.iteration == 6 and batch.iteration == 6
    # resumed at iteration 4 with its variables: the same losses as without a break
    np.testing.assert_allclose(first + second, straight, rtol=1e-6)
    names = sorted(p.name for p in (tmp_path / "b").iterdir())
    for i in (2, 4, 6):
        assert f"net_checkpoint_{i}.index" in names and f"net_checkpoint_{i}.meta" in names


def test_an_optimizer_function_adds_loss_and_optimizer_whose_state_is_checkpointed(tf, tmp_path):
    def momentum(graph):
        loss = graph.get_tensor_by_name("loss:0")
        return loss, tf.train.MomentumOptimizer(5.0, momentum=0.9).minimize(loss)

    _, straight, _ = train(export(tf, tmp_path / "a" / "net", minimize=False), 20, optimizer=momentum, loss=None)
    assert straight[-1] < 0.6 * straight[0]
    graph = export(tf, tmp_path / "b" / "net", minimize=False)
    _, first, _ = train(graph, 10, optimizer=momentum, loss=None, save_every=10)
    _, second, _ = train(graph, 10, optimizer=momentum, loss=None, save_every=10)
    # the momentum accumulators were restored too, else the losses would part
    np.testing.assert_allclose(first + second, straight, rtol=1e-5)


@pytest.mark.parametrize("form", ["name", "dict"])
def test_summaries_are_written_at_their_iterations(tf, tmp_path, form):
    graph = build_net(tf)
    with graph.as_default():
        tf.summary.scalar("loss_summary", graph.get_tensor_by_name("loss:0"))
        merged = tf.summary.merge_all().name
        tf.train.export_meta_graph(filename=str(tmp_path / "net.meta"))
    summary = merged if form == "name" else {"losses": (merged, 2)}
    _, losses, _ = train(str(tmp_path / "net"), 4, summary=summary, log_dir=str(tmp_path / "log"), log_every=3)
    written = {}
    for path in (tmp_path / "log").iterdir():
        for event in tf.train.summary_iterator(str(path)):
            for value in event.summary.value:
                written[event.step] = value.simple_value
    # a name: at the first iteration and every log_every; a dict: every frequency
    steps = [1, 3] if form == "name" else [2, 4]
    assert sorted(written) == steps
    np.testing.assert_allclose([written[i] for i in steps], [losses[i - 1] for i in steps], rtol=1e-6)


@pytest.mark.parametrize("scheduler", ["sync", "cluster"])
def test_predict_gives_what_the_graph_gives_on_the_same_input(tf, tmp_path, scheduler, request):
    client = request.getfixturevalue("cluster_client") if scheduler == "cluster" else "sync"
    graph = export(tf, tmp_path / "net")
    train(graph, 6, save_every=6)
    checkpoint = str(tmp_path / "net_checkpoint_6")
    predict = gp.tensorflow.Predict(checkpoint, inputs={"raw:0": RAW}, outputs={"pred:0": PRED})
    pipeline = NoiseSource() + predict
    r = gp.BatchRequest(random_seed=5)
    r[RAW] = gp.ArraySpec(roi=IN_ROI)
    r[PRED] = gp.ArraySpec(roi=OUT_ROI)
    with gp.build(pipeline, scheduler=client):
        batch = pipeline.request_batch(r)

    direct = tf.Graph()
    with direct.as_default(), tf.Session(graph=direct) as session:
        tf.train.import_meta_graph(checkpoint + ".meta").restore(session, checkpoint)
        expected = session.run("pred:0", feed_dict={"raw:0": batch[RAW].data})
    assert np.ptp(expected) > 0.1  # trained: zero-initialised variables give 0.5 everywhere
    # the same graph and variables run by the same CPU kernels: bit-identical
    np.testing.assert_array_equal(batch[PRED].data, expected)
    assert batch[PRED].spec.roi == OUT_ROI and batch[PRED].spec.voxel_size == VOXEL


def test_predict_skip_empty_gives_zeros_for_all_zero_inputs(tf, tmp_path):
    graph = export(tf, tmp_path / "net")
    train(graph, 1, save_every=1)
    predict = gp.tensorflow.Predict(str(tmp_path / "net_checkpoint_1"), inputs={"raw:0": RAW},
                                    outputs={"pred:0": PRED}, skip_empty=True)
    pipeline = NoiseSource() + gp.IntensityScaleShift(RAW, 0, 0) + predict
    request = gp.BatchRequest(random_seed=5)
    request[RAW] = gp.ArraySpec(roi=IN_ROI)
    request[PRED] = gp.ArraySpec(roi=OUT_ROI)
    with gp.build(pipeline):
        batch = pipeline.request_batch(request)
    # the network would give sigmoid(bias) != 0 here
    np.testing.assert_array_equal(batch[PRED].data, np.zeros((22, 22), np.float32))


def test_an_input_tensor_not_in_the_graph_fails_at_build(tf, tmp_path):
    node = gp.tensorflow.Train(export(tf, tmp_path / "net"), "optimizer", "loss:0",
                               inputs={"rwa:0": RAW, "target:0": TARGET}, outputs={}, gradients={})
    message = r"Train \(created at .*: input 'rwa:0' \(TF_RAW\) names no tensor .*placeholders are \['raw:0', 'tar"
    with pytest.raises(gp.PipelineSetupError, match=message):
        with gp.build(NoiseSource() + node):
            pass


def test_a_loss_input_no_node_provides_fails_at_build(tf, tmp_path):
    node = gp.tensorflow.Train(export(tf, tmp_path / "net"), "optimizer", "loss:0",
                               inputs={"raw:0": RAW, "target:0": gp.ArrayKey("TF_NOBODY")}, outputs={}, gradients={})
    message = r"Train \(created at .*test_tensorflow.py:\d+\): input 'target:0' is TF_NOBODY, which no node"
    with pytest.raises(gp.PipelineSetupError, match=message):
        with gp.build(NoiseSource() + node):
            pass


def test_a_missing_optimizer_op_or_checkpoint_fails_at_build(tf, tmp_path):
    graph = export(tf, tmp_path / "net")
    node = gp.tensorflow.Train(graph, "adam", "loss:0", inputs={"raw:0": RAW}, outputs={}, gradients={})
    message = r"Train \(created at .*test_tensorflow.py:\d+\): optimizer 'adam' is not in the graph"
    with pytest.raises(gp.PipelineSetupError, match=message):
        with gp.build(NoiseSource() + node):
            pass
    predict = gp.tensorflow.Predict(str(tmp_path / "net_checkpoint_9"), inputs={"raw:0": RAW}, outputs={"pred:0": PRED})
    with pytest.raises(gp.PipelineSetupError, match="net_checkpoint_9' does not exist"):
        with gp.build(NoiseSource() + predict):
            pass


def test_loss_must_be_none_with_an_optimizer_function(tf):
    with pytest.raises(PipelineConfigError, match="loss must be None"):
        gp.tensorflow.Train("net", lambda graph: None, "loss:0", inputs={}, outputs={}, gradients={})
