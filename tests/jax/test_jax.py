"""jax.Train and jax.Predict with a GenericJaxModel: training learns a
learnable answer and resumes from its checkpoint; Predict runs the trained
parameters on a cluster and in-process alike. Skipped where jax is missing
(it is the optional extra dpowder[jax])."""

import dask
import numpy as np
import pytest

import dpowder as gp

jax = pytest.importorskip("jax", reason="jax is not installed (pip install dpowder[jax])")
jnp = jax.numpy

RAW = gp.ArrayKey("JAX_RAW")
TARGET = gp.ArrayKey("JAX_TARGET")
PRED = gp.ArrayKey("JAX_PRED")
VOXEL = gp.Coordinate(2, 2)


class NoiseSource(gp.BatchProvider):
    """RAW: uniform noise from the request's seed; TARGET: RAW > 0.5."""

    def setup(self):
        roi = gp.Roi((0, 0), (200, 200))
        self.provides(RAW, gp.ArraySpec(roi=roi, voxel_size=VOXEL, dtype=np.float32, interpolatable=True))
        self.provides(TARGET, gp.ArraySpec(roi=roi, voxel_size=VOXEL, dtype=np.float32, interpolatable=False))

    def provide(self, request):
        roi = request[RAW].roi
        raw = self.rng.random(tuple(roi.shape / VOXEL), dtype=np.float32)
        batch = gp.Batch()
        for key, data in ((RAW, raw), (TARGET, (raw > 0.5).astype(np.float32))):
            spec = self.spec[key].copy()
            spec.roi = roi
            batch[key] = gp.Array(data, spec)
        return batch


class Logistic(gp.jax.GenericJaxModel):
    """Per-voxel logistic regression, plain gradient descent."""

    def __init__(self):
        super().__init__(is_training=True)

    def initialize(self, rng_key, inputs):
        return {"w": jnp.zeros(()), "b": jnp.zeros(())}

    def forward(self, params, inputs):
        return {"pred": jax.nn.sigmoid(params["w"] * inputs["raw"] + params["b"])}

    def train_step(self, params, inputs, pmapped):
        def loss_fn(p):
            logits = p["w"] * inputs["raw"] + p["b"]
            return jnp.mean(jnp.logaddexp(0, logits) - inputs["target"] * logits)

        loss, grads = jax.value_and_grad(loss_fn)(params)
        params = jax.tree_util.tree_map(lambda p, g: p - 5.0 * g, params, grads)
        return params, self.forward(params, inputs), loss


def request(seed=1):
    r = gp.BatchRequest(random_seed=seed)
    roi = gp.Roi((20, 20), (40, 40))
    for key in (RAW, TARGET, PRED):
        r[key] = gp.ArraySpec(roi=roi)
    return r


def train(tmp_path, n, **kwargs):
    node = gp.jax.Train(
        Logistic(), inputs={"raw": RAW, "target": TARGET}, outputs={"pred": PRED},
        checkpoint_basename=str(tmp_path / "model"), **kwargs,
    )
    pipeline = NoiseSource() + node
    losses = []
    with dask.config.set({"dpowder.stream.workers": 0}), gp.build(pipeline):
        for _ in range(n):
            batch = pipeline.request_batch(request())
            losses.append(batch.loss)
    return node, losses, batch


def test_training_drives_the_loss_down_and_returns_outputs_where_requested(tmp_path):
    node, losses, batch = train(tmp_path, 40)
    assert batch.iteration == 40
    assert losses[-1] < 0.6 * losses[0]
    assert batch[PRED].spec.roi == gp.Roi((20, 20), (40, 40))
    assert batch[PRED].spec.voxel_size == VOXEL
    assert batch[PRED].data.shape == (20, 20)


def test_restart_resumes_from_the_checkpoint(tmp_path):
    _, straight, _ = train(tmp_path / "a", 6)
    _, first, _ = train(tmp_path / "b", 3, save_every=3)
    node, second, batch = train(tmp_path / "b", 3, save_every=3, keep_n_checkpoints=1)
    assert batch.iteration == 6
    np.testing.assert_allclose(first + second, straight, rtol=1e-6)
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["model_checkpoint_6"]


@pytest.mark.parametrize("scheduler", ["sync", "cluster"])
def test_predict_runs_the_trained_parameters(tmp_path, scheduler, request):
    client = request.getfixturevalue("cluster_client") if scheduler == "cluster" else "sync"
    node, _, _ = train(tmp_path, 6, save_every=6)
    predict = gp.jax.Predict(Logistic(), inputs={"raw": RAW}, outputs={"pred": PRED},
                             checkpoint=str(tmp_path / "model_checkpoint_6"))
    pipeline = NoiseSource() + predict
    r = request_for_predict()
    with gp.build(pipeline, scheduler=client):
        batch = pipeline.request_batch(r)
    params = node.params
    expected = 1 / (1 + np.exp(-(float(params["w"]) * batch[RAW].data + float(params["b"]))))
    np.testing.assert_allclose(batch[PRED].data, expected, rtol=1e-5)
    assert batch[PRED].spec.roi == r[PRED].roi


def request_for_predict():
    r = gp.BatchRequest(random_seed=5)
    r[RAW] = gp.ArraySpec(roi=gp.Roi((0, 0), (20, 30)))
    r[PRED] = gp.ArraySpec(roi=gp.Roi((0, 0), (20, 30)))
    return r


def test_an_input_no_node_provides_fails_at_build(tmp_path):
    node = gp.jax.Train(Logistic(), inputs={"raw": gp.ArrayKey("JAX_NOBODY")}, outputs={"pred": PRED})
    with pytest.raises(gp.PipelineSetupError, match="JAX_NOBODY"):
        with gp.build(NoiseSource() + node):
            pass


def test_a_model_that_is_not_a_generic_jax_model_is_rejected():
    with pytest.raises(gp.PipelineSetupError, match="GenericJaxModel"):
        gp.jax.Train(object(), inputs={}, outputs={})


def test_an_output_train_step_lacks_fails_before_the_parameters_change(tmp_path):
    node = gp.jax.Train(Logistic(), inputs={"raw": RAW, "target": TARGET}, outputs={"logits": PRED},
                        checkpoint_basename=str(tmp_path / "model"))
    with dask.config.set({"dpowder.stream.workers": 0}), gp.build(NoiseSource() + node) as pipeline:
        with pytest.raises(gp.BatchRequestError, match=r"'logits' \(JAX_PRED\) is not an output of train_step, which gives \['pred'\]"):
            pipeline.request_batch(request())
        assert node.iteration == 0
        assert float(node.params["w"]) == 0.0 and float(node.params["b"]) == 0.0


def test_predict_with_a_missing_checkpoint_fails_at_build(tmp_path):
    missing = str(tmp_path / "model_checkpoint_1")
    predict = gp.jax.Predict(Logistic(), inputs={"raw": RAW}, outputs={"pred": PRED}, checkpoint=missing)
    with pytest.raises(gp.PipelineSetupError, match="model_checkpoint_1' does not exist"):
        with gp.build(NoiseSource() + predict):
            pass


def test_predict_teardown_drops_the_cached_parameters(tmp_path):
    from dpowder.engine import worker_cache

    train(tmp_path, 2, save_every=2)
    predict = gp.jax.Predict(Logistic(), inputs={"raw": RAW}, outputs={"pred": PRED},
                             checkpoint=str(tmp_path / "model_checkpoint_2"))
    pipeline = NoiseSource() + predict

    def cached():
        return [key for key in list(worker_cache._CACHE) if isinstance(key, tuple) and predict._cache_tag in key]

    with gp.build(pipeline, scheduler="sync"):
        pipeline.request_batch(request_for_predict())
        assert len(cached()) == 1
    assert cached() == []
