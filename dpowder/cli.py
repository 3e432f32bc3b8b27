"""The ``dpowder`` command.

``dpowder predict``: run a torch model blockwise over a zarr dataset into a
zarr dataset (with voxel size and offset metadata), on an existing cluster
(``--scheduler``) or a local one (``--workers``), resuming where a stopped
run stopped::

    dpowder predict --input raw.zarr --input-dataset raw \\
        --model mypackage.models:make_unet --checkpoint model.pt \\
        --input-shape 96 96 96 --output-shape 56 56 56 \\
        --output pred.zarr --output-dataset affs --workers 4

Quiet unless ``--verbose``; the last line printed says what was written,
where and how fast; errors are one line naming the option to change (exit
code 2). Every option: ``docs/cli.md``.
"""

import argparse
import contextlib
import importlib
import logging
import os
import re
import shutil
import sys
import time
import warnings

import numpy as np

from .errors import DpowderError, PipelineConfigError

logger = logging.getLogger("dpowder.cli")


def _parser():
    parser = argparse.ArgumentParser(prog="dpowder", description="dpowder: gunpowder's API on a dask engine")
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser(
        "predict",
        help="predict a torch model blockwise over a zarr volume",
        description="Run a torch model blockwise over a zarr dataset into a zarr dataset (docs/cli.md).",
    )
    p.add_argument("--input", required=True, help="input zarr container")
    p.add_argument("--input-dataset", required=True, help="dataset in the input container")
    p.add_argument("--voxel-size", type=int, nargs="+", help="voxel size of the input, world units per spatial axis "
                   "(overrides the dataset's metadata; needed where it has none)")  # fmt: skip
    p.add_argument("--offset", type=int, nargs="+", help="offset of the input, world units per spatial axis "
                   "(overrides the dataset's metadata)")  # fmt: skip
    model = p.add_mutually_exclusive_group(required=True)
    model.add_argument("--model", help="a factory 'module:function' returning a torch.nn.Module; the module is "
                       "found on sys.path or in the current directory (mymodel.py)")  # fmt: skip
    model.add_argument("--torchscript", help="a TorchScript file (torch.jit.save)")
    p.add_argument("--checkpoint", help="parameters to load into the model made by --model")
    p.add_argument("--trust-checkpoint", action="store_true", help="load a --checkpoint that is a full pickle "
                   "(runs code stored in the file); by default only tensors and containers of them load")  # fmt: skip
    p.add_argument("--input-shape", type=int, nargs="+", required=True, help="network input shape, voxels")
    p.add_argument("--output-shape", type=int, nargs="+", required=True, help="network output shape, voxels")
    p.add_argument("--output", required=True, help="output zarr container")
    p.add_argument("--output-dataset", required=True, help="dataset in the output container")
    p.add_argument("--output-dtype", default="float32")
    p.add_argument("--zarr-format", type=int, choices=(2, 3), help="format of a new output container "
                   "(default 2, zarr v2 + OME-NGFF 0.4; 3 is zarr v3 + OME-NGFF 0.5)")  # fmt: skip
    where = p.add_mutually_exclusive_group()
    where.add_argument("--scheduler", help="address of a running dask scheduler")
    where.add_argument("--workers", type=int, default=1, help="local worker processes (default 1: in-process)")
    p.add_argument("--device", default="cuda", help="torch device ('cuda' falls back to the CPU)")
    p.add_argument("--no-resume", action="store_true", help="process every block, even those done before")
    p.add_argument("--max-retries", type=int, default=2)
    p.add_argument("--verbose", "-v", action="store_true", help="log what dpowder and dask do (INFO)")
    return parser


class CommandLineError(PipelineConfigError):
    """A command-line argument that cannot work (printed without a
    traceback, naming the option; exit code 2)."""


def _load_model(args):
    if args.torchscript:
        from .torch.torchscript import TorchScriptModel

        return TorchScriptModel(args.torchscript)
    module_name, _, function = args.model.partition(":")
    if not module_name or not function:
        raise CommandLineError(f"--model must be 'module:function', got {args.model!r}")
    # as `python -m` would: the current directory first (a console script's sys.path lacks it)
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name != module_name and not module_name.startswith(f"{e.name}."):
            raise  # the module was found, but it imports something missing
        raise CommandLineError(
            f"--model {args.model}: no module {module_name!r} on sys.path or in the current directory {cwd}"
        ) from e
    factory = getattr(module, function, None)
    if not callable(factory):
        raise CommandLineError(f"--model {args.model}: {module.__file__} defines no function {function!r}")
    return factory()


def _probe(model, input_shape_voxels, channels, dtype):
    """The model's output for a zero input: its channel count and spatial
    shape (checked against --output-shape before any block runs)."""
    import torch

    x = torch.zeros((1, channels) + tuple(input_shape_voxels), dtype=getattr(torch, np.dtype(dtype).name))
    with torch.inference_mode():
        return tuple(model(x).shape)


def _input_spec(gp, args, raw_key, spatial_shape_voxels):
    """The input's ``ArraySpec`` (voxel size and ROI), from its metadata and
    ``--voxel-size`` / ``--offset``; a volume without voxel size metadata is
    named with the option that gives it."""
    source = gp.ZarrSource(args.input, {raw_key: args.input_dataset})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with gp.build(source):
            spec = source.spec[raw_key].copy()
    dims = len(spatial_shape_voxels)
    for option in ("voxel_size", "offset"):
        value = getattr(args, option)
        if value is not None and len(value) != dims:
            raise CommandLineError(
                f"--{option.replace('_', '-')} {' '.join(map(str, value))}: {args.input_dataset} has {dims} spatial "
                f"axes (shape {tuple(spatial_shape_voxels)} voxels), give {dims} values"
            )
    if args.voxel_size is None:
        for warning in caught:
            if "no voxel size found" in str(warning.message):
                logger.warning(
                    "%s in %s has no voxel size metadata: using %s; pass --voxel-size (world units, one value per "
                    "spatial axis)", args.input_dataset, args.input, tuple(spec.voxel_size),
                )  # fmt: skip
    if args.voxel_size is None and args.offset is None:
        return spec
    voxel_size = gp.Coordinate(args.voxel_size) if args.voxel_size is not None else spec.voxel_size
    offset = gp.Coordinate(args.offset) if args.offset is not None else spec.roi.offset
    if offset % voxel_size != gp.Coordinate((0,) * dims):
        raise CommandLineError(f"--offset {tuple(offset)} is not a multiple of the voxel size {tuple(voxel_size)}")
    spec.voxel_size = voxel_size
    spec.roi = gp.Roi(offset, gp.Coordinate(spatial_shape_voxels) * voxel_size)
    return spec


class _Written:
    """Counts the blocks written and their voxels (``block_done_callback``)."""

    def __init__(self, voxel_size):
        self.voxel_size = voxel_size
        self.blocks = 0
        self.voxels = 0

    def __call__(self, block, start, duration):
        self.blocks += 1
        self.voxels += int(np.prod(block.write_roi.shape / self.voxel_size))


def predict(args):
    import dpowder as gp

    from .torch import Predict
    from .io import zarr as zarr_io

    if len(args.input_shape) != len(args.output_shape):
        raise CommandLineError("--input-shape and --output-shape need the same number of axes")
    if args.checkpoint is not None and args.torchscript:
        raise CommandLineError("--checkpoint goes with --model (a TorchScript file holds its parameters)")
    if args.checkpoint is not None and not os.path.exists(args.checkpoint):
        raise CommandLineError(f"--checkpoint {args.checkpoint}: no such file")
    try:
        output_dtype = np.dtype(args.output_dtype)
    except TypeError as e:
        raise CommandLineError(f"--output-dtype {args.output_dtype}: not a numpy dtype") from e
    if args.max_retries < 0 or args.workers < 1:
        raise CommandLineError(f"--max-retries ({args.max_retries}) must be >= 0 and --workers ({args.workers}) >= 1")
    model = _load_model(args)
    raw_key, pred_key = gp.ArrayKey("RAW"), gp.ArrayKey("PREDICTION")
    handle, _, _ = zarr_io.open_dataset(args.input, args.input_dataset)
    dims = len(args.input_shape)
    channel_dims = handle.ndim - dims
    if channel_dims not in (0, 1):
        raise CommandLineError(
            f"--input-dataset {args.input_dataset} has shape {handle.shape}: expected {dims} spatial axes (as "
            f"--input-shape) and at most one channel axis"
        )
    raw_spec = _input_spec(gp, args, raw_key, handle.shape[channel_dims:])
    voxel_size = raw_spec.voxel_size
    input_shape = gp.Coordinate(args.input_shape) * voxel_size
    output_shape = gp.Coordinate(args.output_shape) * voxel_size
    context = (input_shape - output_shape) / 2
    if any(c < 0 for c in context) or (input_shape - output_shape) % (voxel_size * 2) != gp.Coordinate((0,) * dims):
        raise CommandLineError(
            f"--input-shape {args.input_shape} must exceed --output-shape {args.output_shape} by an even number of voxels per axis"
        )
    probe_model = _load_model(args) if args.torchscript else model
    if args.checkpoint:
        import torch

        from .checkpoints import load_torch

        state = load_torch(torch, args.checkpoint, "cpu", args.trust_checkpoint, opt_in="--trust-checkpoint")
        if isinstance(state, dict) and "model_state_dict" in state:
            state = state["model_state_dict"]
        probe_model.load_state_dict(state)
    channels = handle.shape[0] if channel_dims else 1
    try:
        probed = _probe(probe_model, args.input_shape, channels, raw_spec.dtype)
    except Exception as e:  # the user's model: any error it raises on a plain input
        raise CommandLineError(
            f"{'--torchscript' if args.torchscript else '--model'} fails on a zero input of {channels} channel(s) and "
            f"--input-shape {tuple(args.input_shape)}: {type(e).__name__}: {e}"
        ) from e
    if tuple(probed[2:]) != tuple(args.output_shape):
        raise CommandLineError(
            f"the model maps an input of {tuple(args.input_shape)} voxels to {tuple(probed[2:])}, not to "
            f"--output-shape {tuple(args.output_shape)}"
        )
    out_channels = probed[1]

    total_output = raw_spec.roi.grow(-context, -context)
    shape = ((out_channels,) if out_channels > 1 else ()) + tuple(total_output.shape / voxel_size)
    chunks = ((out_channels,) if out_channels > 1 else ()) + tuple(args.output_shape)
    zarr_io.require_dataset(
        args.output, args.output_dataset, shape, chunks, output_dtype, None, voxel_size,
        total_output.offset, 1 if out_channels > 1 else 0, zarr_format=args.zarr_format,
    )  # fmt: skip
    out, _, _ = zarr_io.open_dataset(args.output, args.output_dataset)
    if tuple(out.chunks[-dims:]) != tuple(args.output_shape):
        raise CommandLineError(
            f"--output-dataset {args.output_dataset} in {args.output} exists with chunks {out.chunks}; blocks of "
            f"--output-shape {tuple(args.output_shape)} would not be aligned to them (write ROIs would tear "
            f"chunks): use a new dataset or the same output shape"
        )

    markers = os.path.join(os.fspath(args.output) + ".done", args.output_dataset.strip("/").replace("/", "__"))
    if args.no_resume and os.path.isdir(markers):
        shutil.rmtree(markers)
    done_before = len(os.listdir(markers)) if os.path.isdir(markers) else 0

    reference = gp.BatchRequest()
    reference[raw_key] = gp.ArraySpec(roi=gp.Roi((0,) * dims, input_shape))
    reference[pred_key] = gp.ArraySpec(roi=gp.Roi(context, output_shape))
    # the spec found above, given: the source warns no second time about missing metadata
    given = {raw_key: gp.ArraySpec(voxel_size=voxel_size, roi=raw_spec.roi)}
    pipeline = gp.ZarrSource(args.input, {raw_key: args.input_dataset}, array_specs=given) + gp.Unsqueeze([raw_key])
    if channel_dims == 0:
        pipeline = pipeline + gp.Unsqueeze([raw_key])
    pipeline = pipeline + gp.AsType(raw_key, np.float32) if np.dtype(raw_spec.dtype) != np.float32 else pipeline
    pipeline = (
        pipeline
        + Predict(
            model,
            inputs={0: raw_key},
            outputs={0: pred_key},
            array_specs={pred_key: gp.ArraySpec(roi=total_output, voxel_size=voxel_size, dtype=output_dtype)},
            checkpoint=args.checkpoint,
            device=args.device,
            trust_checkpoint=args.trust_checkpoint,
        )
        + gp.Squeeze([pred_key])
    )
    if out_channels == 1:
        pipeline = pipeline + gp.Squeeze([pred_key])
    pipeline = pipeline + gp.ZarrWrite({pred_key: args.output_dataset}, store=args.output, zarr_format=args.zarr_format)
    written = _Written(voxel_size)
    pipeline = pipeline + gp.DaisyRequestBlocks(
        reference,
        {raw_key: "read_roi", pred_key: "write_roi"},
        num_workers=args.workers,
        fit="shrink",
        read_write_conflict=False,
        done_marker_dir=markers,
        max_retries=args.max_retries,
        block_done_callback=written,
    )
    with _client(args) as client, gp.build(pipeline, scheduler=client):
        start = time.perf_counter()  # the blocks, not the cluster's start
        pipeline.request_batch(gp.BatchRequest())
        seconds = time.perf_counter() - start
    where = args.scheduler or (f"{args.workers} local workers" if args.workers > 1 else "in-process")
    before = f"; {done_before} blocks were done before (--no-resume redoes them)" if done_before else ""
    print(
        f"dpowder predict: wrote {args.output_dataset} {shape} {output_dtype} to {args.output}: "
        f"{written.blocks} blocks, {written.voxels:,} voxels in {seconds:.1f} s "
        f"({written.voxels / max(seconds, 1e-9):,.0f} voxels/s, {where}){before}",
        flush=True,
    )
    return 0


@contextlib.contextmanager
def _client(args):
    """The client blocks run on: the scheduler at ``--scheduler``, a
    ``LocalCluster`` of ``--workers`` processes, or none (in-process). Closed
    client first, then cluster, so no comm is cut while in use."""
    if not args.scheduler and args.workers <= 1:
        yield None
        return
    from distributed import Client

    from .engine.cluster import local_cluster

    quiet = logging.INFO if args.verbose else logging.ERROR
    if args.scheduler:
        client = Client(args.scheduler)
        cluster = None
    else:
        # a dashboard on a free port: the user may want to watch the run
        cluster = local_cluster(args.workers, dashboard_address=":0", silence_logs=quiet)
        client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


_CREATED_AT = re.compile(r"(\w+) \(created at [^)]*\)")

# which option made which node of the command's pipeline, for error messages
_OPTIONS = {
    "ZarrSource": "--input/--input-dataset",
    "Predict": "--model/--torchscript/--checkpoint",
    "ZarrWrite": "--output/--output-dataset",
    "DaisyRequestBlocks": "--input-shape/--output-shape",
}


def _for_the_command_line(message):
    """``message`` with "Node (created at file:line)", which points into
    dpowder on a command line, replaced by the option the node comes from."""
    message = _CREATED_AT.sub(lambda m: f"{m.group(1)} (from {_OPTIONS.get(m.group(1), 'dpowder predict')})", message)
    return message.replace("the dataset name in `datasets`", "--input-dataset")


def _configure_logging(verbose):
    """Quiet by default: warnings only, and distributed's INFO lines (tens of
    them per cluster) only with ``--verbose``."""
    level = logging.INFO if verbose else logging.WARNING
    form = "%(asctime)s %(name)s %(levelname)s: %(message)s" if verbose else "dpowder: %(levelname)s: %(message)s"
    logging.basicConfig(level=level, format=form, force=True)
    if not verbose:
        # worker processes configure their logging from dask's config, read from the environment they inherit
        os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "error")
    try:
        import distributed  # noqa: F401  (importing it configures its loggers: do that first)
    except ImportError:
        return
    logging.getLogger("distributed").setLevel(level if verbose else logging.ERROR)


def main(argv=None):
    args = _parser().parse_args(argv)
    _configure_logging(args.verbose)
    try:
        return {"predict": predict}[args.command](args)
    except DpowderError as e:
        print(f"dpowder {args.command}: {_for_the_command_line(str(e))}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
