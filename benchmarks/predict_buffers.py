"""The forward pass of a small 3D network on 70^3 blocks, two block threads
of one torch thread each (as a Scan(num_workers=2) runs torch.Predict), with
the buffers as glibc serves them by default or kept on the heap
(``allocator.buffers_on_heap``), and with the model as given or its
channels-last copy (``torch/layout.py``).

    .venv/bin/python benchmarks/predict_buffers.py [--repetitions 3]

The network: Conv3d(1->8) ReLU Conv3d(8->8) ReLU Conv3d(8->3) Sigmoid,
valid, float weights (the one of ../shared/bench/scan_predict.py). The four
settings alternate, each in a fresh interpreter (glibc's settings last for
the process); prints, as JSON, per setting the median seconds per forward
pass (per thread) and the page faults per pass, and whether the copy's
outputs are bit-identical to the given model's. No numbers are asserted
anywhere: this prints them.
"""

import argparse
import json
import statistics
import subprocess
import sys

CHILD = r"""
import json, resource, sys, threading, time
import torch
from dpowder.engine import allocator
from dpowder.torch import layout

heap, channels_last = sys.argv[1] == "heap", sys.argv[2] == "channels_last"
torch.set_num_threads(1)
generator = torch.Generator().manual_seed(0)
given = torch.nn.Sequential(
    torch.nn.Conv3d(1, 8, 3), torch.nn.ReLU(), torch.nn.Conv3d(8, 8, 3), torch.nn.ReLU(),
    torch.nn.Conv3d(8, 3, 3), torch.nn.Sigmoid(),
)
with torch.no_grad():
    for p in given.parameters():
        p.copy_(torch.empty(p.shape).uniform_(-0.3, 0.3, generator=generator))
copy = layout.channels_last_copy(torch, given, torch.device("cpu"))
model = copy if channels_last else given
blocks = [torch.rand(1, 1, 70, 70, 70, generator=generator) for _ in range(2)]
with torch.inference_mode():
    same = layout.same_outputs(torch, {0: given(blocks[0])}, {0: copy(blocks[0])})
times, faults = [], []

def thread(block, passes=8):
    with torch.inference_mode():
        model(block)
        for _ in range(passes):
            before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
            start = time.perf_counter()
            model(block).contiguous()
            times.append(time.perf_counter() - start)
            faults.append(resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before)

def run():
    threads = [threading.Thread(target=thread, args=(b,)) for b in blocks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

if heap:
    with allocator.buffers_on_heap():
        run()
else:
    run()
print(json.dumps({"seconds": sorted(times)[len(times) // 2], "faults": sorted(faults)[len(faults) // 2], "same": same}))
"""

SETTINGS = [(h, c) for h in ("mmap", "heap") for c in ("given", "channels_last")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repetitions", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, list] = {f"{h}/{c}": [] for h, c in SETTINGS}
    same = None
    for _ in range(args.repetitions):
        for h, c in SETTINGS:
            out = subprocess.run([sys.executable, "-c", CHILD, h, c], capture_output=True, text=True, check=True)
            line = json.loads(out.stdout.strip().splitlines()[-1])
            results[f"{h}/{c}"].append((line["seconds"], line["faults"]))
            same = line["same"]
    summary = {
        name: {
            "seconds_per_pass": round(statistics.median(s for s, _ in runs), 4),
            "faults_per_pass": statistics.median(f for _, f in runs),
        }
        for name, runs in results.items()
    }
    print(json.dumps({"channels_last_bit_identical": same, "settings": summary}, indent=1))  # noqa: T201


if __name__ == "__main__":
    main()
