"""torch.Train: learns, checkpoints and resumes exactly, returns outputs and
gradients where they lie, and rejects bad configurations before the first
optimizer step. Batches stream from a cluster or are made in-process; the
same seed gives the same training run either way."""

import subprocess
import sys

import dask
import numpy as np
import pytest

import dpowder as gp

torch = pytest.importorskip("torch")

RAW = gp.ArrayKey("TRAIN_RAW")
TARGET = gp.ArrayKey("TRAIN_TARGET")
PRED = gp.ArrayKey("TRAIN_PRED")
GRAD = gp.ArrayKey("TRAIN_GRAD")
VOXEL = gp.Coordinate(4, 2, 2)
WORLD = gp.Roi((0, 0, 0), (400, 400, 400))


class NoiseSource(gp.BatchProvider):
    """RAW: uniform noise in [0, 1) from the request's seed, shaped
    (1, 1, z, y, x)."""

    def setup(self):
        self.provides(RAW, gp.ArraySpec(roi=WORLD, voxel_size=VOXEL, dtype=np.float32, interpolatable=True))

    def provide(self, request):
        roi = request[RAW].roi
        shape = (1, 1) + tuple(roi.shape / VOXEL)
        batch = gp.Batch()
        spec = self.spec[RAW].copy()
        spec.roi = roi
        batch[RAW] = gp.Array(self.rng.random(shape, dtype=np.float32), spec)
        return batch


class Threshold(gp.BatchFilter):
    """TARGET = RAW > 0.5, the learnable answer."""

    def setup(self):
        spec = self.spec[RAW].copy()
        spec.interpolatable = False
        self.provides(TARGET, spec)

    def prepare(self, request):
        deps = gp.BatchRequest()
        deps[RAW] = request[TARGET].copy()
        return deps

    def process(self, batch, request):
        out = gp.Batch()
        spec = batch[RAW].spec.copy()
        out[TARGET] = gp.Array((batch[RAW].data > 0.5).astype(np.float32), spec)
        return out


class Net(torch.nn.Module):
    """One convolution; ``kernel_size`` 3 makes the output one voxel
    smaller than the input on each side (a valid convolution)."""

    def __init__(self, kernel_size=1):
        super().__init__()
        self.conv = torch.nn.Conv3d(1, 1, kernel_size)

    def forward(self, raw):
        return self.conv(raw)


def make_train(tmp_path, seed=0, **kwargs):
    torch.manual_seed(seed)
    model = Net()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    args = dict(
        model=model,
        loss=torch.nn.BCEWithLogitsLoss(),
        optimizer=optimizer,
        inputs={"raw": RAW},
        outputs={0: PRED},
        loss_inputs={0: PRED, 1: TARGET},
        checkpoint_basename=str(tmp_path / "model"),
        save_every=1000,
        device="cpu",
    )
    args.update(kwargs)
    return gp.torch.Train(**args)


def request(seed=1, size=(32, 16, 16)):
    r = gp.BatchRequest(random_seed=seed)
    roi = gp.Roi((40, 40, 40), size)
    r[RAW] = gp.ArraySpec(roi=roi)
    r[TARGET] = gp.ArraySpec(roi=roi)
    r[PRED] = gp.ArraySpec(roi=roi)
    return r


def run(train, iterations, scheduler=None, seed=1):
    pipeline = NoiseSource() + Threshold() + train
    losses = []
    with gp.build(pipeline, scheduler=scheduler):
        for _ in range(iterations):
            batch = pipeline.request_batch(request(seed))
            losses.append(batch.loss)
    return losses, batch


@pytest.fixture(autouse=True)
def in_process():
    """Without a client, batches are made in-process (no cluster started)."""
    with dask.config.set({"dpowder.stream.workers": 0}):
        yield


def test_training_on_a_learnable_task_drives_the_loss_down(tmp_path):
    losses, batch = run(make_train(tmp_path), 60)
    assert batch.iteration == 60
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])


def test_restart_resumes_from_checkpoint_at_the_right_iteration_with_the_same_optimizer_state(tmp_path):
    """Four iterations, a checkpoint, a new process-like start with fresh
    objects, four more: the same losses as eight iterations in one go."""
    straight, _ = run(make_train(tmp_path / "a"), 8)

    (tmp_path / "b").mkdir()
    first = make_train(tmp_path / "b", save_every=4)
    first_losses, _ = run(first, 4)
    saved_optimizer = first.optimizer.state_dict()

    resumed = make_train(tmp_path / "b", seed=123, save_every=4)
    pipeline = NoiseSource() + Threshold() + resumed
    with gp.build(pipeline):
        assert resumed.iteration == 4
        state = resumed.optimizer.state_dict()
        assert state["state"][0]["step"] == saved_optimizer["state"][0]["step"]
        for index in saved_optimizer["state"]:
            for name in ("exp_avg", "exp_avg_sq"):
                assert torch.equal(state["state"][index][name], saved_optimizer["state"][index][name])
        second_losses = []
        for i in range(4):
            batch = pipeline.request_batch(request())
            assert batch.iteration == 5 + i
            second_losses.append(batch.loss)
    (tmp_path / "a").mkdir(exist_ok=True)
    assert first_losses + second_losses == straight
    assert (tmp_path / "b" / "model_checkpoint_8").exists()


def test_same_seed_same_training_run_whatever_the_number_of_workers(tmp_path, cluster_client):
    here, _ = run(make_train(tmp_path / "a"), 5)
    cluster, _ = run(make_train(tmp_path / "b"), 5, scheduler=cluster_client)
    other_seed, _ = run(make_train(tmp_path / "c"), 5, seed=2)
    assert here == cluster
    assert here != other_seed


def test_batches_stream_from_the_cluster_and_rates_are_visible(tmp_path, cluster_client):
    train = make_train(tmp_path)
    losses, batch = run(train, 6, scheduler=cluster_client)
    assert batch.iteration == 6
    # the stats object outlives teardown for reporting
    pipeline = NoiseSource() + Threshold() + train
    with gp.build(pipeline, scheduler=cluster_client):
        pipeline.request_batch(request())
        stats = train.stream_stats
        assert stats.consumed == 1 and stats.workers == 2 and stats.depth == 4
        assert 0.0 <= stats.wait_fraction() <= 1.0
        assert "consumed 1" in stats.summary()


def test_outputs_and_gradients_have_the_requested_rois_and_voxel_size(tmp_path):
    train = make_train(tmp_path, gradients={0: GRAD})
    pipeline = NoiseSource() + Threshold() + train
    r = request()
    r[GRAD] = gp.ArraySpec(roi=r[PRED].roi)
    with gp.build(pipeline):
        batch = pipeline.request_batch(r)
    for key in (PRED, GRAD):
        assert batch[key].spec.roi == gp.Roi((40, 40, 40), (32, 16, 16))
        assert batch[key].spec.voxel_size == VOXEL
        assert batch[key].data.shape == (1, 1, 8, 8, 8)
    # BCE-with-logits gradient: (sigmoid(x) - y) / n
    pred, target = batch[PRED].data, batch[TARGET].data
    expected = (1 / (1 + np.exp(-pred.astype(np.float64))) - target) / pred.size
    # the prediction was taken before the step, the gradient belongs to it
    np.testing.assert_allclose(batch[GRAD].data, expected, rtol=1e-4, atol=1e-8)


def valid_train(tmp_path, **kwargs):
    model = Net(kernel_size=3)
    return make_train(
        tmp_path,
        model=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.01),
        loss=lambda pred: (pred**2).mean(),
        loss_inputs={0: PRED},
        **kwargs,
    )


def test_an_output_requested_without_roi_is_centred_on_the_inputs(tmp_path):
    pipeline = NoiseSource() + valid_train(tmp_path)
    r = gp.BatchRequest(random_seed=3)
    r[RAW] = gp.ArraySpec(roi=gp.Roi((40, 40, 40), (40, 20, 20)))
    r[PRED] = gp.ArraySpec()
    with gp.build(pipeline):
        batch = pipeline.request_batch(r)
    assert batch[PRED].spec.roi == gp.Roi((44, 42, 42), (32, 16, 16))
    assert batch[PRED].data.shape == (1, 1, 8, 8, 8)


def test_a_loss_input_no_node_provides_fails_at_build(tmp_path):
    missing = gp.ArrayKey("TRAIN_NOBODY")
    pipeline = NoiseSource() + Threshold() + make_train(tmp_path, loss_inputs={0: PRED, 1: missing})
    with pytest.raises(gp.PipelineSetupError, match="TRAIN_NOBODY.*no node upstream provides"):
        with gp.build(pipeline):
            pass


def test_an_output_name_the_model_lacks_fails_at_build(tmp_path):
    pipeline = NoiseSource() + Threshold() + make_train(tmp_path, outputs={"head": PRED})
    with pytest.raises(gp.PipelineSetupError, match="'head'.*no submodule.*conv"):
        with gp.build(pipeline):
            pass


def test_an_output_index_the_model_lacks_fails_before_any_step(tmp_path):
    train = make_train(tmp_path, outputs={0: PRED, 1: GRAD})
    before = [p.detach().clone() for p in train.model.parameters()]
    pipeline = NoiseSource() + Threshold() + train
    with gp.build(pipeline):
        with pytest.raises(gp.BatchRequestError, match="output 1 .*TRAIN_GRAD.*is not an output"):
            pipeline.request_batch(request())
        assert train.iteration == 0
    assert all(torch.equal(a, b) for a, b in zip(before, train.model.parameters()))


def test_an_output_spec_whose_shape_disagrees_with_the_model_fails_before_any_step(tmp_path):
    wrong = gp.ArraySpec(roi=gp.Roi((40, 40, 40), (40, 20, 20)))
    train = valid_train(tmp_path, array_specs={PRED: wrong})
    before = [p.detach().clone() for p in train.model.parameters()]
    pipeline = NoiseSource() + train
    r = gp.BatchRequest(random_seed=3)
    r[RAW] = gp.ArraySpec(roi=gp.Roi((40, 40, 40), (40, 20, 20)))
    with gp.build(pipeline):
        with pytest.raises(gp.BatchRequestError, match=r"output for TRAIN_PRED has shape \(1, 1, 8, 8, 8\)"):
            pipeline.request_batch(r)
    assert all(torch.equal(a, b) for a, b in zip(before, train.model.parameters()))


def test_tensorboard_summaries_are_written_to_log_dir(tmp_path):
    pytest.importorskip("tensorboard", reason="TensorBoard summaries need the tensorboard package")
    run(make_train(tmp_path, log_dir=str(tmp_path / "logs"), log_every=2), 4)
    assert list((tmp_path / "logs").glob("events.out.tfevents.*"))


def test_cuda_falls_back_to_cpu_where_cuda_is_missing(tmp_path):
    train = make_train(tmp_path, device="cuda")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert train.device.type == expected


def test_importing_dpowder_torch_does_not_import_torch():
    code = "import sys, dpowder, dpowder.torch, dpowder.jax, dpowder.tensorflow; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_constructing_train_without_torch_says_what_to_install(tmp_path, monkeypatch):
    model = Net()
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match=r"pip install dpowder\[torch\]"):
        gp.torch.Train(model, None, None, {"raw": RAW}, {0: PRED}, {0: PRED})


def test_precache_upstream_of_train_streams_the_batches(tmp_path, cluster_client):
    precache = gp.PreCache(cache_size=4, num_workers=2)
    train = make_train(tmp_path)
    pipeline = NoiseSource() + Threshold() + precache + train
    with gp.build(pipeline, scheduler=cluster_client):
        for _ in range(5):
            batch = pipeline.request_batch(request())
        assert precache.stream_stats.consumed == 5 and precache.stream_stats.workers == 2
    assert batch.iteration == 5


def test_nodes_downstream_of_train_run_in_the_calling_process(tmp_path, cluster_client):
    train = make_train(tmp_path)
    snapshot = gp.Snapshot({RAW: "raw", PRED: "pred"}, output_dir=str(tmp_path / "snapshots"), every=2)
    stats = gp.PrintProfilingStats(every=3)
    pipeline = NoiseSource() + Threshold() + train + snapshot + stats
    with gp.build(pipeline, scheduler=cluster_client):
        for _ in range(3):
            batch = pipeline.request_batch(request())
    assert batch.iteration == 3
    # gunpowder's Snapshot records the 1st, 3rd, ... batch, named by iteration
    assert sorted(p.name for p in (tmp_path / "snapshots").iterdir()) == ["1.zarr", "3.zarr"]
    assert "Train" in stats.last_report and "Threshold" in stats.last_report
