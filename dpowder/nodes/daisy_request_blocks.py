"""``DaisyRequestBlocks``: request daisy-style blocks from upstream."""

import time

from ..batch import Batch
from ..blockwise.blocks import BlockGrid, DoneMarkers
from ..callbacks import TqdmCallback
from ..engine import blockmap
from .blockwise_filter import BlockwiseFilter, check_num_workers
from ..errors import BatchRequestError, PipelineConfigError, PipelineRequestError

ROI_TYPES = ("read_roi", "write_roi")


class DaisyRequests:
    """The block requests of a daisy job: ``reference`` with each key's ROI
    set to the block's read or write ROI, as ``roi_map`` says."""

    def __init__(self, grid, reference, roi_map):
        self.grid = grid
        self.reference = reference
        self.roi_map = roi_map
        self.num_blocks = grid.num_blocks

    def request(self, index):
        block = self.grid.block(index)
        request = self.reference.copy()
        for key, spec in request.items():
            spec.roi = getattr(block, self.roi_map[key])
        return request

    def block_id(self, index):
        return self.grid.block_id_of(index)

    def describe(self, index):
        return repr(self.grid.block(index))


class DaisyRequestBlocks(BlockwiseFilter):
    """Iteratively requests batches similar to ``reference`` from upstream
    providers, with their ROIs set to blocks distributed as daisy
    distributes them.

    The ROIs of the array or graph specs in the reference can be set to
    either the block's ``read_roi`` or ``write_roi``, see parameter
    ``roi_map``. The reference's ROIs of the keys mapped to ``read_roi``
    (``write_roi``) give one block's read (write) ROI; the blocks tile the
    upstream ROI of the keys mapped to ``read_roi`` (or ``total_roi``).

    The batch request to this node has to be empty, as there is no guarantee
    that this node will get to process all chunks required to fulfill a
    particular batch request.

    Inside a daisy worker (a worker function run by
    ``dpowder.blockwise.run_blockwise`` or a ``Server``, or a process started
    with ``DAISY_CONTEXT`` in its environment, also by real daisy when
    ``daisy`` is installed), this node does not tile the volume itself: it
    takes the blocks that the running task hands this worker from a
    ``Client`` and processes them here, one after the other, as gunpowder's
    ``DaisyRequestBlocks`` does (``block_done_callback`` is called for
    each). Outside a worker it tiles ``total_roi`` and runs the blocks on
    dpowder's engine.

    Args:

        reference (BatchRequest):

            A reference ``BatchRequest``. This request will be shifted
            according to the blocks.

        roi_map (dict from ArrayKey or GraphKey to string):

            A map indicating which block ROI (``read_roi`` or ``write_roi``)
            to use for which item in the reference request.

        num_workers (int, optional):

            If set to >1 and no scheduler is given, configured or active,
            blocks run on that many threads in this process (see
            ``engine.placement``).

        block_done_callback (function, optional):

            If given, will be called with arguments ``(block, start,
            duration)`` for each block that was processed. ``start`` and
            ``duration`` will be given in seconds, as in ``start =
            time.time()`` and ``duration = time.time() - start``, right
            before and after a block gets processed.

        total_roi (Roi, optional): The ROI to tile (world units, including
            the context); default: the upstream ROI of the read keys.

        fit (str, optional): daisy's fit, ``valid`` (default), ``overhang``
            or ``shrink``.

        read_write_conflict (bool, optional): Whether blocks read what their
            neighbours write (default ``True``, as daisy): a block starts once
            the blocks it conflicts with (daisy's dependencies) are done; in
            ``pipeline.to_dask`` these are the edges of its task.

        check_function (callable, optional): ``check_function(block) ->
            bool``: whether a block is done already (checked on the driver
            in one pass, before anything is submitted or lowered).

        done_marker_dir (str, optional): Keep a marker per finished block
            there; a stopped job run again processes only the other blocks.

        max_retries (int, optional): How often a failing block is retried.

        timeout (float, optional): Seconds after which a block counts as
            failed.

        progress_callback (ScanCallback, optional): Progress observer
            (default: a tqdm bar, a few log lines without a terminal).
    """

    def __init__(
        self,
        reference,
        roi_map,
        num_workers=1,
        block_done_callback=None,
        total_roi=None,
        fit="valid",
        read_write_conflict=True,
        check_function=None,
        done_marker_dir=None,
        max_retries=2,
        timeout=None,
        progress_callback=None,
    ):
        for key in reference.keys():
            if roi_map.get(key) not in ROI_TYPES:
                raise PipelineConfigError(
                    f"DaisyRequestBlocks: roi_map maps {key} to {roi_map.get(key)!r}; map every key of the "
                    f"reference to 'read_roi' or 'write_roi'"
                )
        check_num_workers("DaisyRequestBlocks", num_workers)
        self.reference = reference.copy()
        self.roi_map = dict(roi_map)
        self.num_workers = num_workers
        self.block_done_callback = block_done_callback
        self.total_roi = total_roi
        self.fit = fit
        self.read_write_conflict = read_write_conflict
        self.check_function = check_function
        self.done_marker_dir = done_marker_dir
        self.max_retries = max_retries
        self.timeout = timeout
        self.progress_callback = (
            TqdmCallback("DaisyRequestBlocks, blocks") if progress_callback is None else progress_callback
        )

    def _block_rois(self):
        rois = {"read_roi": None, "write_roi": None}
        for key, spec in self.reference.items():
            kind = self.roi_map[key]
            rois[kind] = spec.roi if rois[kind] is None else rois[kind].union(spec.roi)
        read_roi = rois["read_roi"] or rois["write_roi"]
        write_roi = rois["write_roi"] or rois["read_roi"]
        if not read_roi.contains(write_roi):
            raise PipelineConfigError(
                f"{self.describe()}: the read ROI {read_roi} (keys mapped to read_roi) does not contain the "
                f"write ROI {write_roi} (keys mapped to write_roi)"
            )
        return read_roi, write_roi

    def setup(self):
        super().setup()
        self.block_read_roi, self.block_write_roi = self._block_rois()

    def grid(self):
        """The blocks, as a ``BlockGrid``."""
        total_roi = self.total_roi
        if total_roi is None:
            for key, kind in self.roi_map.items():
                if kind != "read_roi" or key not in self.spec or self.spec[key].roi is None:
                    continue
                roi = self.spec[key].roi
                total_roi = roi if total_roi is None else total_roi.intersect(roi)
            if total_roi is None or total_roi.unbounded:
                raise BatchRequestError(
                    f"{self.describe()}: no key mapped to read_roi has a bounded upstream ROI; give total_roi"
                )
        return BlockGrid(
            total_roi, self.block_read_roi, self.block_write_roi, self.read_write_conflict, self.fit, task_id="DaisyRequestBlocks"
        )

    def provide(self, request):
        from ..blockwise.task import run_grid

        self._check_empty(request)
        client = _daisy_client()
        if client is not None:
            self._process_client_blocks(client)
            return Batch()
        grid, job, markers = self._job()
        failures, _ = run_grid(
            job,
            grid,
            self.executor(),
            markers,
            self.check_function,
            self.block_done_callback,
            self.progress_callback,
            self.timeout,
        )
        blockmap.raise_failures(failures, grid.num_blocks, self.describe())
        return Batch()

    def lowered(self, request):
        """The lazy form of ``provide`` (``Pipeline.to_dask``): a ``Delayed``
        over the tasks of the blocks not done yet (see
        ``blockmap.task.lower_grid``); ``timeout`` applies to
        ``request_batch`` only (a running dask task cannot be stopped)."""
        from ..blockwise.task import lower_grid

        self._check_empty(request)
        if _daisy_client() is not None:
            raise PipelineRequestError(
                f"{self.describe()} runs inside a daisy worker, where it processes the blocks its worker is "
                f"handed one by one; use request_batch() instead of to_dask()"
            )
        grid, job, markers = self._job()
        return lower_grid(job, grid, self.describe(), markers, self.check_function, self.block_done_callback)

    def _check_empty(self, request):
        if len(request) > 0:
            raise BatchRequestError(
                f"{self.describe()} was asked for {sorted(request.keys())}, but the request to "
                f"DaisyRequestBlocks must be empty: it writes blocks through upstream nodes and returns nothing"
            )

    def _job(self):
        """The grid, the job of its blocks (the first and last planned now,
        so request errors come first) and the done markers."""
        grid = self.grid()
        if grid.num_blocks == 0:
            raise BatchRequestError(
                f"{self.describe()}: not a single block (read ROI {self.block_read_roi}, write ROI "
                f"{self.block_write_roi}) fits into the total ROI {grid.total_read_roi} with fit {self.fit!r}"
            )
        requests = DaisyRequests(grid, self.reference, self.roi_map)
        blockmap.plan_ends(self, requests)
        markers = DoneMarkers(self.done_marker_dir) if self.done_marker_dir is not None else None
        job = blockmap.PipelineJob(
            self.get_upstream_provider(), requests, keep=False, retries=self.max_retries, markers=markers
        )
        return grid, job, markers

    def block_request(self, block):
        """The request for ``block``: the reference, each key's ROI the
        block's read or write ROI as ``roi_map`` says."""
        request = self.reference.copy()
        for key, spec in request.items():
            spec.roi = getattr(block, self.roi_map[key])
        return request

    def _process_client_blocks(self, client):
        """Process the blocks ``client`` hands out, here, until there are
        none (a block that raises is released as failed and the next one
        taken, as in gunpowder)."""
        from ..engine import tasks
        from ..engine.execute import execute_local
        from ..engine.plan import plan

        upstream = self.get_upstream_provider()
        markers = DoneMarkers(self.done_marker_dir) if self.done_marker_dir is not None else None
        token = tasks.IN_TASK.set(True)
        try:
            while True:
                with client.acquire_block() as block:
                    if block is None:
                        break
                    start = time.time()
                    execute_local(plan(upstream, self.block_request(block)))
                    if markers is not None:
                        markers.mark(block.block_id[1])
                    if self.block_done_callback is not None:
                        self.block_done_callback(block, start, time.time() - start)
        finally:
            tasks.IN_TASK.reset(token)


def _daisy_client():
    """The ``Client`` of the daisy worker this runs in: dpowder's (a worker
    context or ``DAISY_CONTEXT``), or real daisy's when daisy is installed
    and its worker context is set; ``None`` outside a worker."""
    from ..blockwise.context import current_context

    context = current_context()
    if context is None:
        return None
    if context.get("server") != "dpowder":
        try:
            import daisy
        except ImportError:
            daisy = None
        if daisy is not None and hasattr(daisy, "Client"):
            # a worker of real daisy: its server speaks daisy's protocol
            return daisy.Client()
    from ..blockwise.client import Client

    return Client()
