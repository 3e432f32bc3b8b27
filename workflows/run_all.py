"""The main job: run every workflow, in order, end to end."""

import runpy
import sys
import time
from pathlib import Path

WORKFLOWS = ["quickstart.py", "prepare_data.py", "train.py", "predict.py", "report.py", "xarray_session.py"]


def main():
    here = Path(__file__).parent
    sys.path.insert(0, str(here))
    for name in WORKFLOWS:
        start = time.perf_counter()
        print(f"=== workflows/{name}", flush=True)
        runpy.run_path(str(here / name), run_name="__main__")
        print(f"=== workflows/{name} done in {time.perf_counter() - start:.1f} s", flush=True)


if __name__ == "__main__":
    main()
