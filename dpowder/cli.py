"""The ``dpowder`` command.

``dpowder predict``: run a torch model blockwise over a zarr dataset into a
zarr dataset (with voxel size and offset metadata), on an existing cluster
(``--scheduler``) or a local one (``--workers``), resuming where a stopped
run stopped::

    dpowder predict --input raw.zarr --input-dataset raw \\
        --model mypackage.models:make_unet --checkpoint model.pt \\
        --input-shape 96 96 96 --output-shape 56 56 56 \\
        --output pred.zarr --output-dataset affs --workers 4
"""

import argparse
import importlib
import logging
import os
import shutil
import sys

import numpy as np

logger = logging.getLogger("dpowder.cli")


def _parser():
    parser = argparse.ArgumentParser(prog="dpowder", description="dpowder: gunpowder's API on a dask engine")
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("predict", help="predict a torch model blockwise over a zarr volume")
    p.add_argument("--input", required=True, help="input zarr container")
    p.add_argument("--input-dataset", required=True, help="dataset in the input container")
    model = p.add_mutually_exclusive_group(required=True)
    model.add_argument("--model", help="an importable factory 'module:function' returning a torch.nn.Module")
    model.add_argument("--torchscript", help="a TorchScript file (torch.jit.save)")
    p.add_argument("--checkpoint", help="parameters to load into the model made by --model")
    p.add_argument("--input-shape", type=int, nargs="+", required=True, help="network input shape, voxels")
    p.add_argument("--output-shape", type=int, nargs="+", required=True, help="network output shape, voxels")
    p.add_argument("--output", required=True, help="output zarr container")
    p.add_argument("--output-dataset", required=True, help="dataset in the output container")
    p.add_argument("--output-dtype", default="float32")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--scheduler", help="address of a running dask scheduler")
    where.add_argument("--workers", type=int, default=1, help="local worker processes (default 1: in-process)")
    p.add_argument("--device", default="cuda", help="torch device ('cuda' falls back to the CPU)")
    p.add_argument("--no-resume", action="store_true", help="process every block, even those done before")
    p.add_argument("--max-retries", type=int, default=2)
    return parser


def _load_model(args):
    if args.torchscript:
        from .torch.torchscript import TorchScriptModel

        return TorchScriptModel(args.torchscript)
    module_name, _, function = args.model.partition(":")
    if not function:
        raise SystemExit(f"dpowder predict: --model must be 'module:function', got {args.model!r}")
    return getattr(importlib.import_module(module_name), function)()


def _probe(model, input_shape_voxels, channels, dtype):
    """The model's output for a zero input: its channel count and spatial
    shape (checked against --output-shape before any block runs)."""
    import torch

    x = torch.zeros((1, channels) + tuple(input_shape_voxels), dtype=getattr(torch, np.dtype(dtype).name))
    with torch.inference_mode():
        return tuple(model(x).shape)


def predict(args):
    import dpowder as gp
    from .torch import Predict
    from .errors import PipelineConfigError
    from .io import zarr as zarr_io

    if len(args.input_shape) != len(args.output_shape):
        raise PipelineConfigError("--input-shape and --output-shape need the same number of axes")
    model = _load_model(args)
    raw_key, pred_key = gp.ArrayKey("RAW"), gp.ArrayKey("PREDICTION")
    source = gp.ZarrSource(args.input, {raw_key: args.input_dataset})
    with gp.build(source):
        raw_spec = source.spec[raw_key].copy()
    handle, _, _ = zarr_io.open_dataset(args.input, args.input_dataset)
    dims = len(args.input_shape)
    channel_dims = handle.ndim - dims
    if channel_dims not in (0, 1):
        raise PipelineConfigError(f"{args.input_dataset} has shape {handle.shape}: expected {dims} spatial axes and at most one channel axis")
    voxel_size = raw_spec.voxel_size
    input_shape = gp.Coordinate(args.input_shape) * voxel_size
    output_shape = gp.Coordinate(args.output_shape) * voxel_size
    context = (input_shape - output_shape) / 2
    if any(c < 0 for c in context) or (input_shape - output_shape) % (voxel_size * 2) != gp.Coordinate((0,) * dims):
        raise PipelineConfigError(
            f"--input-shape {args.input_shape} must exceed --output-shape {args.output_shape} by an even number of voxels per axis"
        )
    if args.checkpoint is not None and not os.path.exists(args.checkpoint):
        raise PipelineConfigError(f"checkpoint {args.checkpoint!r} does not exist")
    probe_model = _load_model(args) if args.torchscript else model
    if args.checkpoint:
        import torch

        probe_model.load_state_dict(torch.load(args.checkpoint, map_location="cpu", weights_only=False))
    probed = _probe(probe_model, args.input_shape, handle.shape[0] if channel_dims else 1, raw_spec.dtype)
    if tuple(probed[2:]) != tuple(args.output_shape):
        raise PipelineConfigError(
            f"the model maps an input of {tuple(args.input_shape)} voxels to {tuple(probed[2:])}, not to "
            f"--output-shape {tuple(args.output_shape)}"
        )
    out_channels = probed[1]

    total_output = raw_spec.roi.grow(-context, -context)
    shape = ((out_channels,) if out_channels > 1 else ()) + tuple(total_output.shape / voxel_size)
    chunks = ((out_channels,) if out_channels > 1 else ()) + tuple(args.output_shape)
    zarr_io.require_dataset(
        args.output, args.output_dataset, shape, chunks, np.dtype(args.output_dtype), None, voxel_size,
        total_output.offset, 1 if out_channels > 1 else 0,
    )  # fmt: skip
    out, _, _ = zarr_io.open_dataset(args.output, args.output_dataset)
    if tuple(out.chunks[-dims:]) != tuple(args.output_shape):
        raise PipelineConfigError(
            f"{args.output_dataset} in {args.output} exists with chunks {out.chunks}; blocks of "
            f"--output-shape {tuple(args.output_shape)} would not be aligned to them (write ROIs would tear "
            f"chunks): use a new dataset or the same output shape"
        )

    markers = os.path.join(os.fspath(args.output) + ".done", args.output_dataset.strip("/").replace("/", "__"))
    if args.no_resume and os.path.isdir(markers):
        shutil.rmtree(markers)

    reference = gp.BatchRequest()
    reference[raw_key] = gp.ArraySpec(roi=gp.Roi((0,) * dims, input_shape))
    reference[pred_key] = gp.ArraySpec(roi=gp.Roi(context, output_shape))
    pipeline = source + gp.Unsqueeze([raw_key])
    if channel_dims == 0:
        pipeline = pipeline + gp.Unsqueeze([raw_key])
    pipeline = pipeline + gp.AsType(raw_key, np.float32) if np.dtype(raw_spec.dtype) != np.float32 else pipeline
    pipeline = (
        pipeline
        + Predict(
            model,
            inputs={0: raw_key},
            outputs={0: pred_key},
            array_specs={pred_key: gp.ArraySpec(roi=total_output, voxel_size=voxel_size, dtype=np.dtype(args.output_dtype))},
            checkpoint=args.checkpoint,
            device=args.device,
        )
        + gp.Squeeze([pred_key])
    )
    if out_channels == 1:
        pipeline = pipeline + gp.Squeeze([pred_key])
    pipeline = pipeline + gp.ZarrWrite({pred_key: args.output_dataset}, store=args.output)
    pipeline = pipeline + gp.DaisyRequestBlocks(
        reference,
        {raw_key: "read_roi", pred_key: "write_roi"},
        num_workers=args.workers,
        fit="shrink",
        read_write_conflict=False,
        done_marker_dir=markers,
        max_retries=args.max_retries,
    )
    client = None
    if args.scheduler:
        from distributed import Client

        client = Client(args.scheduler)
    try:
        with gp.build(pipeline, scheduler=client):
            pipeline.request_batch(gp.BatchRequest())
    finally:
        if client is not None:
            client.close()
    return 0


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    args = _parser().parse_args(argv)
    from .errors import DpowderError

    try:
        return {"predict": predict}[args.command](args)
    except DpowderError as e:
        print(f"dpowder {args.command}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
