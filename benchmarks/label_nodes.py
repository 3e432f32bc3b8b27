"""Label and graph nodes through a pipeline against the bare numpy/scipy
call of the same work, per 132^3 batch.

Run: ``python benchmarks/label_nodes.py [--repeats N]``. For each node it
prints the time per batch of ``request_batch`` on ``ArraySource + node``,
the time of the same array work written as plain numpy/scipy, and the ratio
bare / pipeline (1.0: the node adds nothing beyond the array work; the aim
is >= 0.8).
"""

import argparse
import time

import numpy as np

import dpowder as gp

SIZE = 132
LABELS = gp.ArrayKey("LABELS")
OUT = gp.ArrayKey("OUT")
MASK = gp.ArrayKey("MASK")
GRAPH = gp.GraphKey("GRAPH")

NHOOD3 = [[-1, 0, 0], [0, -1, 0], [0, 0, -1]]
NHOOD12 = NHOOD3 + [[-2, 0, 0], [0, -3, 0], [0, 0, -3], [-3, 0, 0], [0, -9, 0], [0, 0, -9], [-4, 0, 0], [0, -27, 0], [0, 0, -27]]


def segmentation(shape, seed=0):
    """Blocks of 12^3 voxels of random ids in 0..49 (0 is background)."""
    blocks = np.random.default_rng(seed).integers(0, 50, size=tuple(-(-s // 12) for s in shape), dtype=np.uint64)
    for axis in range(3):
        blocks = blocks.repeat(12, axis=axis)
    return np.ascontiguousarray(blocks[: shape[0], : shape[1], : shape[2]])


def best_of(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def compare(pipeline, request, bare, repeats):
    """Best-of times of ``request_batch`` and of ``bare()``, alternating so
    that both see the same machine load."""
    with gp.build(pipeline) as p:
        p.request_batch(request)  # warm up
        node_times, bare_times = [], []
        for _ in range(repeats):
            node_times.append(best_of(lambda: p.request_batch(request), 1))
            bare_times.append(best_of(bare, 1))
    return min(node_times), min(bare_times)


def through_pipeline(pipeline, request, repeats):
    with gp.build(pipeline) as p:
        p.request_batch(request)  # warm up
        return best_of(lambda: p.request_batch(request), repeats)


def array_source(key, data, offset=(0, 0, 0)):
    roi = gp.Roi(offset, data.shape)
    return gp.ArraySource(key, gp.Array(data, gp.ArraySpec(roi=roi, voxel_size=(1, 1, 1))))


def request_for(key, shape=(SIZE,) * 3):
    request = gp.BatchRequest()
    request[key] = gp.ArraySpec(roi=gp.Roi((0, 0, 0), shape))
    return request


# -- bare numpy / scipy versions of the same work -----------------------------


def bare_affinities(seg, nhood, pad):
    out = np.empty((len(nhood), SIZE, SIZE, SIZE), dtype=np.uint8)
    centre = seg[pad:, pad:, pad:]
    for e, (dz, dy, dx) in enumerate(nhood):
        other = seg[pad + dz : pad + dz + SIZE, pad + dy : pad + dy + SIZE, pad + dx : pad + dx + SIZE]
        out[e] = (centre == other) & (centre > 0) & (other > 0)
    return out


def bare_balance(labels, mask):
    scale = mask.astype(np.float32)
    classes, counts = np.unique(labels[scale != 0], return_counts=True)
    fracs = np.clip(counts / scale.sum(), 0.05, 0.95)
    weights = np.zeros(2)
    weights[classes] = 1.0 / 2 / fracs
    return scale * np.take(weights, labels).astype(np.float32)


def bare_grow(labels):
    def cross(data, op):
        result = data.copy()
        for axis in range(3):
            lo = [slice(None)] * 3
            hi = [slice(None)] * 3
            lo[axis], hi[axis] = slice(None, -1), slice(1, None)
            op(result[tuple(lo)], data[tuple(hi)], out=result[tuple(lo)])
            op(result[tuple(hi)], data[tuple(lo)], out=result[tuple(hi)])
        return result

    low, high = cross(labels, np.minimum), cross(labels, np.maximum)
    return np.where((low == high) | (labels == 0), labels, 0)


def bare_rasterize(voxels, radius):
    r = int(radius)
    grid = np.stack(np.meshgrid(*[np.arange(-r, r + 1)] * 3, indexing="ij"), -1).reshape(-1, 3)
    stencil = grid[(grid**2).sum(1) <= radius**2]
    points = (voxels[:, None, :] + stencil[None]).reshape(-1, 3)
    points = points[np.all((points >= 0) & (points < SIZE), axis=1)]
    out = np.zeros((SIZE,) * 3, dtype=np.uint8)
    out[tuple(points.T)] = 1
    return out


def bare_rasterize_edt(voxels, radius):
    from scipy.ndimage import distance_transform_edt

    seeds = np.ones((SIZE,) * 3, dtype=bool)
    seeds[tuple(voxels.T)] = False
    return (distance_transform_edt(seeds) <= radius).astype(np.uint8)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    repeats = args.repeats
    rows = []

    for name, nhood in (("AddAffinities (3 offsets)", NHOOD3), ("AddAffinities (12 offsets)", NHOOD12)):
        pad = max(-min(o) for o in nhood)
        seg = segmentation((SIZE + pad,) * 3)
        pipeline = array_source(LABELS, seg, (-pad,) * 3) + gp.AddAffinities(nhood, LABELS, OUT)
        rows.append((name, *compare(pipeline, request_for(OUT), lambda: bare_affinities(seg, nhood, pad), repeats)))

    labels = (segmentation((SIZE,) * 3) % 2).astype(np.uint8)
    mask = (segmentation((SIZE,) * 3, seed=1) > 5).astype(np.uint8)
    pipeline = (array_source(LABELS, labels), array_source(MASK, mask)) + gp.MergeProvider() + gp.BalanceLabels(LABELS, OUT, MASK)
    rows.append(("BalanceLabels (mask)", *compare(pipeline, request_for(OUT), lambda: bare_balance(labels, mask), repeats)))

    seg = segmentation((SIZE,) * 3)
    pipeline = array_source(LABELS, seg) + gp.GrowBoundary(LABELS)
    rows.append(("GrowBoundary (1 step)", *compare(pipeline, request_for(LABELS), lambda: bare_grow(seg), repeats)))

    radius = 3.0
    locations = np.random.default_rng(2).uniform(0, SIZE, size=(1000, 3))
    graph = gp.Graph(
        [gp.Node(i, loc.astype(np.float32)) for i, loc in enumerate(locations)],
        [],
        gp.GraphSpec(roi=gp.Roi((0, 0, 0), (SIZE,) * 3), directed=False),
    )
    pipeline = gp.nodes.GPGraphSource(GRAPH, graph) + gp.RasterizeGraph(
        GRAPH, OUT, gp.ArraySpec(voxel_size=(1, 1, 1)), gp.RasterizationSettings(radius)
    )
    voxels = np.floor(locations).astype(np.int64)
    node, bare = compare(pipeline, request_for(OUT), lambda: bare_rasterize(voxels, radius), repeats)
    rows.append(("RasterizeGraph (1000 points)", node, bare))
    graph_request = gp.BatchRequest()
    graph_request[GRAPH] = gp.GraphSpec(roi=gp.Roi((0, 0, 0), (SIZE,) * 3))
    graph_only = through_pipeline(gp.nodes.GPGraphSource(GRAPH, graph), graph_request, repeats)
    edt = best_of(lambda: bare_rasterize_edt(voxels, radius), max(1, repeats // 2))

    print(f"per {SIZE}^3 batch, best of {repeats}")
    print(f"{'node':32s} {'pipeline ms':>12s} {'bare ms':>10s} {'bare/pipeline':>14s}")
    for name, node, bare in rows:
        print(f"{name:32s} {node * 1e3:12.1f} {bare * 1e3:10.1f} {bare / node:14.2f}")
    print(
        f"RasterizeGraph: of the pipeline's time, {graph_only * 1e3:.1f} ms is the graph source cropping and trimming "
        f"1000 nodes; without it bare/node = {bare / max(node - graph_only, 1e-9):.2f}"
    )
    print(f"RasterizeGraph for reference: a scipy EDT of the same balls (gunpowder's way) takes {edt * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
