"""The engine: plan a request on the driver, lower the plan into a dask
graph, execute it with any dask scheduler."""

from .execute import compute, request_batch, run_inline, to_dask
from .plan import PlanStep, plan

__all__ = ["PlanStep", "compute", "plan", "request_batch", "run_inline", "to_dask"]
