"""``BlockwiseFilter``: what ``Scan`` and ``DaisyRequestBlocks`` share."""

from ..errors import PipelineConfigError
from .batch_filter import BatchFilter


def check_num_workers(node_name, num_workers):
    if num_workers < 1:
        raise PipelineConfigError(f"{node_name}: num_workers must be >= 1, got {num_workers}")


class BlockwiseFilter(BatchFilter):
    """A node that runs in the calling process (the planner stops at it and
    calls ``provide``) and hands a blockwise map to the engine
    (``engine.blockmap``). Every key of ``self.reference`` must be provided
    upstream; its blocks run where ``executor()`` says (see
    ``engine.placement``)."""

    def setup(self):
        for key in self.reference.keys():
            if key not in self.spec:
                raise PipelineConfigError(
                    f"{self.describe()}: the reference asks for {key}, which is not provided upstream "
                    f"(upstream provides {sorted(self.spec.keys())})"
                )

    def runs_on_driver(self):
        return True

    def executor(self):
        from ..engine import record
        from ..engine.blockmap import executor_for

        return executor_for(record.scheduler(self), self.num_workers)
