"""torch.Predict blockwise: Scan + ZarrWrite and DaisyRequestBlocks over a
128^3 volume are bit-identical to one whole-volume forward pass on the valid
region, in-process and on a 2-worker cluster; the model is prepared once per
process; a wrong output shape names block, node and key; dpowder.torch
imports without torch.

Bit identity: torch's CPU convolution sums in an order that depends on the
input size, so float results of a block and of the whole volume can differ
in the last bit. The test network therefore has integer weights and the
volume integer values (all partial sums < 2^24): every sum is exact in
float32, so any difference is a real error (a wrong offset, a missing or
doubled block), not rounding.
"""

import itertools
import subprocess
import sys

import numpy as np
import pytest

import dpowder as gp
from dpowder.blockwise.blocks import cantor_number
from dpowder.callbacks import ScanCallback

torch = pytest.importorskip("torch")
zarr = pytest.importorskip("zarr")
from dpowder.torch import Predict  # noqa: E402

RAW = gp.ArrayKey("RAW")
PRED = gp.ArrayKey("PRED")
SHAPE = (128, 128, 128)
VALID = gp.Roi((2, 2, 2), (124, 124, 124))  # two 3^3 convolutions: 2 voxels of context


def network():
    """Conv3d(1->4, 3) + ReLU + Conv3d(4->1, 3) with integer weights."""
    generator = torch.Generator().manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv3d(1, 4, 3), torch.nn.ReLU(), torch.nn.Conv3d(4, 1, 3))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randint(-2, 3, p.shape, generator=generator))
    return net


@pytest.fixture(scope="module")
def volume():
    raw = np.random.default_rng(0).integers(0, 256, SHAPE).astype(np.float32)
    with torch.inference_mode():
        whole = network()(torch.as_tensor(raw)[None, None])[0, 0].numpy()
    return raw, whole


def prediction_pipeline(raw, net, store, output_roi=VALID):
    source = gp.ArraySource(RAW, gp.Array(raw, gp.ArraySpec(roi=gp.Roi((0, 0, 0), raw.shape), voxel_size=(1, 1, 1))))
    return (
        source
        + gp.Unsqueeze([RAW])
        + gp.Unsqueeze([RAW])
        + Predict(net, inputs={0: RAW}, outputs={0: PRED}, array_specs={PRED: gp.ArraySpec(roi=output_roi)}, device="cpu")
        + gp.Squeeze([PRED])
        + gp.Squeeze([PRED])
        + gp.ZarrWrite({PRED: "pred"}, store=store)
    )


def scan_reference(output_shape=(32, 32, 32)):
    reference = gp.BatchRequest()
    reference.add(RAW, tuple(s + 4 for s in output_shape))
    reference.add(PRED, output_shape)
    return reference


def read(store):
    return zarr.open(store, mode="r")["pred"][:]


@pytest.mark.parametrize("workers", [1, 2])
def test_scan_prediction_is_bit_identical_to_whole_volume_pass(volume, tmp_path, workers, request):
    raw, whole = volume
    store = str(tmp_path / "out.zarr")
    scheduler = request.getfixturevalue("cluster_client") if workers == 2 else None
    pipeline = prediction_pipeline(raw, network(), store) + gp.Scan(scan_reference(), progress_callback=ScanCallback())
    with gp.build(pipeline, scheduler=scheduler):
        assert len(pipeline.request_batch(gp.BatchRequest())) == 0
    out = zarr.open(store, mode="r")["pred"]
    assert out.shape == (124, 124, 124) and tuple(out.attrs["offset"]) == (2, 2, 2)
    np.testing.assert_array_equal(out[:], whole)


@pytest.mark.parametrize("workers", [1, 2])
def test_daisy_blocks_prediction_is_bit_identical_to_whole_volume_pass(volume, tmp_path, workers, request):
    raw, whole = volume
    store = str(tmp_path / "out.zarr")
    scheduler = request.getfixturevalue("cluster_client") if workers == 2 else None
    done = []
    blocks = gp.DaisyRequestBlocks(
        scan_reference(),
        {RAW: "read_roi", PRED: "write_roi"},
        block_done_callback=lambda block, start, duration: done.append(block.block_id),
        fit="shrink",
        progress_callback=ScanCallback(),
    )
    pipeline = prediction_pipeline(raw, network(), store) + blocks
    with gp.build(pipeline, scheduler=scheduler):
        pipeline.request_batch(gp.BatchRequest())
    # 124 = 3 * 32 + 28: 4 blocks per axis, the last shrunk; ids are daisy's (Cantor numbers of the block index)
    expected = [("DaisyRequestBlocks", cantor_number(index)) for index in itertools.product(range(4), repeat=3)]
    assert sorted(done) == sorted(expected) and len(set(done)) == 64
    np.testing.assert_array_equal(read(store), whole)


class CountingSequential(torch.nn.Sequential):
    prepared = 0

    def eval(self):
        CountingSequential.prepared += 1
        return super().eval()


def test_model_is_prepared_once_per_process_and_checkpoint_loaded(volume, tmp_path):
    raw, whole = volume
    checkpoint = str(tmp_path / "model.pt")
    torch.save(network().state_dict(), checkpoint)
    net = CountingSequential(torch.nn.Conv3d(1, 4, 3), torch.nn.ReLU(), torch.nn.Conv3d(4, 1, 3))  # random weights
    source = gp.ArraySource(RAW, gp.Array(raw[:40, :40, :40], gp.ArraySpec(roi=gp.Roi((0, 0, 0), (40, 40, 40)), voxel_size=(1, 1, 1))))
    predict = Predict(net, inputs={0: RAW}, outputs={0: PRED}, checkpoint=checkpoint, device="cpu")
    pipeline = source + gp.Unsqueeze([RAW]) + gp.Unsqueeze([RAW]) + predict + gp.Scan(scan_reference(), progress_callback=ScanCallback())
    CountingSequential.prepared = 0
    request = gp.BatchRequest({PRED: gp.ArraySpec(roi=gp.Roi((2, 2, 2), (36, 36, 36))), RAW: gp.ArraySpec(roi=gp.Roi((0, 0, 0), (40, 40, 40)))})
    with gp.build(pipeline):
        batch = pipeline.request_batch(request)
    assert CountingSequential.prepared == 1  # 8 blocks, one model preparation
    np.testing.assert_array_equal(np.asarray(batch[PRED].data)[0, 0], whole[:36, :36, :36])


def test_output_shape_not_matching_the_request_names_block_node_and_key(volume, tmp_path):
    raw, _ = volume
    reference = gp.BatchRequest()
    reference.add(RAW, (36, 36, 36))
    reference.add(PRED, (34, 34, 34))  # the network gives 32^3
    pipeline = prediction_pipeline(raw, network(), str(tmp_path / "out.zarr")) + gp.Scan(reference, progress_callback=ScanCallback())
    with gp.build(pipeline):
        with pytest.raises(gp.PipelineRequestError) as info:
            pipeline.request_batch(gp.BatchRequest())
    message = str(info.value)
    assert "64 of 64 blocks failed" in message
    assert "block 0 (RAW: [1:37, 1:37, 1:37] (36, 36, 36), PRED: [2:36, 2:36, 2:36] (34, 34, 34))" in message
    assert "Predict (created at" in message and "output for PRED has shape (1, 1, 32, 32, 32)" in message


def test_outputs_by_position_and_submodule_lie_where_requested_in_the_array_specs_dtype(volume):
    """Output 0 (the forward result) converted to the dtype array_specs asks
    for; output "1" (the ReLU submodule's result, the hidden features) as
    the model computed it."""
    raw, whole = volume
    hidden_key = gp.ArrayKey("HIDDEN")
    net = network()
    with torch.inference_mode():
        hidden = net[1](net[0](torch.as_tensor(raw[:12, :12, :12])[None, None])).numpy()
    source = gp.ArraySource(RAW, gp.Array(raw[:12, :12, :12], gp.ArraySpec(roi=gp.Roi((0, 0, 0), (12, 12, 12)), voxel_size=(1, 1, 1))))
    predict = Predict(
        net, inputs={0: RAW}, outputs={0: PRED, "1": hidden_key},
        array_specs={PRED: gp.ArraySpec(dtype=np.float64)}, device="cpu",
    )  # fmt: skip
    request = gp.BatchRequest()
    request[RAW] = gp.ArraySpec(roi=gp.Roi((0, 0, 0), (12, 12, 12)))
    request[PRED] = gp.ArraySpec(roi=gp.Roi((2, 2, 2), (8, 8, 8)))
    request[hidden_key] = gp.ArraySpec(roi=gp.Roi((1, 1, 1), (10, 10, 10)))
    with gp.build(source + gp.Unsqueeze([RAW]) + gp.Unsqueeze([RAW]) + predict) as pipeline:
        batch = pipeline.request_batch(request)
    assert batch[PRED].spec.dtype == np.float64 and batch[PRED].data.dtype == np.float64
    np.testing.assert_array_equal(np.asarray(batch[PRED].data)[0, 0], whole[:8, :8, :8])
    assert batch[hidden_key].spec.roi == gp.Roi((1, 1, 1), (10, 10, 10))
    np.testing.assert_array_equal(np.asarray(batch[hidden_key].data), hidden)


def test_submodule_outputs_of_blocks_in_concurrent_threads_are_each_their_own(volume):
    """Scan(num_workers=4) runs blocks in threads that share one model: a
    hooked submodule output belongs to the forward pass of its own thread's
    block (every block's hidden features equal the whole-volume ones)."""
    raw, _ = volume
    hidden_key = gp.ArrayKey("HIDDEN_THREADS")
    net = network()
    crop = raw[:26, :26, :26]
    with torch.inference_mode():
        hidden = net[1](net[0](torch.as_tensor(crop)[None, None]))[0].numpy()
    source = gp.ArraySource(RAW, gp.Array(crop, gp.ArraySpec(roi=gp.Roi((0, 0, 0), (26, 26, 26)), voxel_size=(1, 1, 1))))
    predict = Predict(net, inputs={0: RAW}, outputs={"1": hidden_key}, device="cpu")
    reference = gp.BatchRequest()
    reference[RAW] = gp.ArraySpec(roi=gp.Roi((0, 0, 0), (10, 10, 10)))
    reference[hidden_key] = gp.ArraySpec(roi=gp.Roi((1, 1, 1), (8, 8, 8)))
    pipeline = (
        source + gp.Unsqueeze([RAW]) + gp.Unsqueeze([RAW]) + predict + gp.Squeeze([hidden_key])
        + gp.Scan(reference, num_workers=4, progress_callback=gp.ScanCallback())
    )  # fmt: skip
    request = gp.BatchRequest({hidden_key: gp.ArraySpec(roi=gp.Roi((1, 1, 1), (24, 24, 24)))})
    with gp.build(pipeline):
        batch = pipeline.request_batch(request)
    np.testing.assert_array_equal(np.asarray(batch[hidden_key].data), hidden)


def test_importing_dpowder_torch_does_not_import_torch():
    code = "import sys, dpowder, dpowder.torch; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_predict_without_torch_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match=r"pip install dpowder\[torch\]"):
        Predict(object(), inputs={0: RAW}, outputs={0: PRED})


def _cached_models(tag):
    from dpowder.engine import worker_cache

    return sum(1 for key in list(worker_cache._CACHE) if isinstance(key, tuple) and tag in key)


@pytest.mark.parametrize("where", ["in-process", "cluster"])
def test_teardown_drops_the_cached_model_here_and_on_every_worker(volume, where, request):
    """A build leaves no model cached: during the build each process that
    ran a block holds one prepared model; after teardown none does."""
    raw, _ = volume
    client = request.getfixturevalue("cluster_client") if where == "cluster" else None
    source = gp.ArraySource(RAW, gp.Array(raw[:12, :12, :12], gp.ArraySpec(roi=gp.Roi((0, 0, 0), (12, 12, 12)), voxel_size=(1, 1, 1))))
    predict = Predict(network(), inputs={0: RAW}, outputs={0: PRED}, device="cpu")
    pipeline = source + gp.Unsqueeze([RAW]) + gp.Unsqueeze([RAW]) + predict + gp.Scan(scan_reference((4, 4, 4)), progress_callback=ScanCallback())
    request_ = gp.BatchRequest({PRED: gp.ArraySpec(roi=gp.Roi((2, 2, 2), (8, 8, 8))), RAW: gp.ArraySpec(roi=gp.Roi((0, 0, 0), (12, 12, 12)))})
    tag = predict._cache_tag

    def everywhere():
        counts = [_cached_models(tag)]
        if client is not None:
            counts += list(client.run(_cached_models, tag).values())
        return counts

    with gp.build(pipeline, scheduler=client):
        pipeline.request_batch(request_)
        assert sum(everywhere()) >= 1
    assert everywhere() == [0] * (1 if client is None else 3)
