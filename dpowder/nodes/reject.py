"""``Reject``: ask upstream again until a batch is masked-in enough or holds
points."""

import logging
import time

from ..errors import BatchRequestError, PipelineConfigError, PipelineSetupError
from .batch_filter import BatchFilter

logger = logging.getLogger(__name__)


class Reject(BatchFilter):
    """Reject batches based on the masked-in vs. masked-out ratio.

    If a pipeline also contains a ``RandomLocation`` node, ``Reject`` needs
    to be placed downstream of it. Each new try asks upstream with a new
    random seed drawn from this request's, so the batch that is finally
    accepted is the same for the same seed wherever it runs. What is asked
    upstream depends on the data received, so a ``Reject`` runs with its
    whole upstream inside one task.

    Args:

        mask (``ArrayKey``, optional):

            The mask to use, if any. A batch passes if the mean of the mask
            is greater than ``min_masked``.

        min_masked (``float``, optional):

            The minimal required ratio of masked-in vs. masked-out voxels.
            Defaults to 0.5.

        ensure_nonempty (``GraphKey``, optional):

            Ensures there is at least one point in the batch.

        reject_probability (``float``, optional):

            The probability by which a batch that is not valid (less than
            min_masked) is actually rejected. Defaults to 1., i.e. strict
            rejection.
    """

    def __init__(self, mask=None, min_masked=0.5, ensure_nonempty=None, reject_probability=1.0):
        if not 0 <= reject_probability <= 1:
            raise PipelineConfigError(f"Reject: reject_probability must be in [0, 1], got {reject_probability}")
        self.mask = mask
        self.min_masked = min_masked
        self.ensure_nonempty = ensure_nonempty
        self.reject_probability = reject_probability

    def setup(self):
        for name, key in (("mask", self.mask), ("ensure_nonempty", self.ensure_nonempty)):
            if key is not None and key not in self.spec:
                raise PipelineSetupError(
                    f"{self.describe()}: {name}={key} is not provided upstream (upstream provides "
                    f"{sorted(self.spec.keys())})"
                )

    def check_request_consistency(self, request):
        super().check_request_consistency(request)
        for name, key in (("mask", self.mask), ("ensure_nonempty", self.ensure_nonempty)):
            if key is not None and key not in request:
                raise BatchRequestError(
                    f"{self.describe()}: {name}={key} is not in the request; Reject judges batches "
                    f"by it, so request it"
                )

    def provide(self, request):
        upstream = self.get_upstream_provider()
        start = time.monotonic()
        report_after = 10
        num_rejected = 0
        while True:
            attempt = request.copy()
            attempt.random_seed = int(self.rng.integers(2**32))
            batch = upstream.request_batch(attempt)
            good = self._is_good(batch)
            if not good and self.reject_probability < 1.0:
                good = self.rng.random() > self.reject_probability
            if good:
                return batch
            num_rejected += 1
            if time.monotonic() - start > report_after:
                logger.warning(
                    "%s: rejected %d batches, been waiting for a good one since %ds",
                    self.name(),
                    num_rejected,
                    report_after,
                )
                report_after *= 2

    def _is_good(self, batch):
        if self.mask is not None and not batch[self.mask].data.mean() > self.min_masked:
            return False
        if self.ensure_nonempty is not None and len(batch[self.ensure_nonempty]) == 0:
            return False
        return True
