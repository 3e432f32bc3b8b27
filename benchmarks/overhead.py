"""Engine overhead per batch: plan + lower + compute of a 10-node pipeline of
cheap nodes on a 64^3 array, against calling the same ``process`` functions
directly in a Python loop (the same work, no engine).

Run: ``python benchmarks/overhead.py``. Prints per-batch times and the
engine's added time per node per request (gunpowder adds about 0.3-0.4 ms
per node per request: it deep-copies the request and re-seeds the global
random state at every node).
"""

import argparse
import time

import numpy as np

import dpowder as gp
from dpowder.engine.plan import plan


class AddOne(gp.BatchFilter):
    """A cheap node: adds one in place."""

    def __init__(self, key):
        self.key = key

    def setup(self):
        self.enable_autoskip()
        self.updates(self.key, self.spec[self.key])

    def prepare(self, request):
        deps = gp.BatchRequest()
        deps[self.key] = request[self.key].copy()
        return deps

    def process(self, batch, request):
        batch[self.key].data += 1


def make_pipeline(n_nodes, key):
    data = np.zeros((64, 64, 64), dtype=np.float32)
    source = gp.ArraySource(key, gp.Array(data, gp.ArraySpec(gp.Roi((0, 0, 0), (64, 64, 64)), (1, 1, 1))))
    pipeline = source
    nodes = []
    for _ in range(n_nodes - 1):
        node = AddOne(key)
        nodes.append(node)
        pipeline = pipeline + node
    return pipeline, source, nodes


def direct_loop(source, nodes, request, key):
    """The same work without the engine: read, then each process()."""
    batch = source.provide(request)
    for node in nodes:
        node.process(batch, request)
    return batch


def timeit(fn, repeats):
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=300)
    args = parser.parse_args()
    key = gp.ArrayKey("RAW")
    n_nodes = 10
    pipeline, source, nodes = make_pipeline(n_nodes, key)
    request = gp.BatchRequest(random_seed=1)
    request[key] = gp.ArraySpec(gp.Roi((0, 0, 0), (64, 64, 64)))
    with gp.build(pipeline) as p:
        t_direct = timeit(lambda: direct_loop(source, nodes, request, key), args.repeats)
        t_engine = timeit(lambda: p.request_batch(request), args.repeats)
        t_plan = timeit(lambda: plan(p.output, request), args.repeats)
        import dask

        with dask.config.set(scheduler="sync"):
            t_dask_sync = timeit(lambda: p.request_batch(request), args.repeats)
        t_lazy = timeit(lambda: p.to_dask(request), args.repeats)
    per_node = (t_engine - t_direct) / n_nodes
    print(f"pipeline: {n_nodes} nodes (ArraySource + 9 cheap filters) on a 64^3 float32 array")
    print(f"direct process() loop         {t_direct * 1e3:8.3f} ms/batch")
    print(f"engine, in-process (default)  {t_engine * 1e3:8.3f} ms/batch  ratio {t_engine / t_direct:.2f}x")
    print(f"engine, dask sync scheduler   {t_dask_sync * 1e3:8.3f} ms/batch  ratio {t_dask_sync / t_direct:.2f}x")
    print(f"  of which planning           {t_plan * 1e3:8.3f} ms/batch")
    print(f"  plan + lower (to_dask)      {t_lazy * 1e3:8.3f} ms/batch")
    print(f"engine overhead per node per request: {per_node * 1e3:.3f} ms in-process, "
          f"{(t_dask_sync - t_direct) / n_nodes * 1e3:.3f} ms via dask (gunpowder: ~0.3-0.4 ms)")


if __name__ == "__main__":
    main()
