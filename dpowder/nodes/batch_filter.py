"""``BatchFilter``: a node with exactly one upstream provider."""

from ..errors import BatchFilterError, PipelineSetupError
from ..engine import record
from .batch_provider import BatchProvider

__all__ = ["BatchFilter", "BatchFilterError"]


class BatchFilter(BatchProvider):
    """A node with exactly one upstream provider.

    By default it exposes the upstream ``ProviderSpec``; change that with
    ``provides()`` and ``updates()`` in ``setup()``. Subclasses implement at
    least ``process()``; optionally ``setup()``, ``teardown()`` and
    ``prepare()``.

    ``prepare(request)`` returns the ``BatchRequest`` of what this node needs
    upstream (``None``: all of ``request``); it runs on the driver while the
    request is planned. ``process(batch, request)`` runs later, anywhere, on a
    copy of this node carrying the attributes ``prepare`` set for this
    request.
    """

    # the engine plans it by gunpowder's BatchFilter contract (prepare on the
    # driver, process in a task), not as a provider
    _filter_contract = True

    def setup(self):
        """Initialize this filter. All upstream providers are set up."""

    def _dp_init_spec(self):
        upstream = self.get_upstream_provider()
        self._spec = upstream.spec.copy() if upstream.spec is not None else None
        self.provided_items.clear()
        self.updated_items.clear()

    @property
    def updated_items(self):
        return self.__dict__.setdefault("updated_items", [])

    def get_upstream_provider(self):
        upstream = record.upstream(self)
        if len(upstream) != 1:
            raise PipelineSetupError(
                f"{self.describe()} is a BatchFilter and needs exactly one upstream provider, "
                f"got {len(upstream)}"
            )
        return upstream[0]

    def updates(self, key, spec):
        """Update an output provided upstream. Call in ``setup()``.

        Args:

            key (ArrayKey or GraphKey): The key this filter updates.

            spec (ArraySpec or GraphSpec): The updated spec.
        """
        if key not in self.spec:
            raise PipelineSetupError(
                f"{self.describe()} updates {key}, but {key} is not provided upstream "
                f"(upstream provides: {sorted(self.spec.keys())})"
            )
        self._spec[key] = spec.copy()
        self.updated_items.append(key)

    def provides(self, key, spec):
        if self.spec is not None and key in self.spec:
            raise PipelineSetupError(
                f"{self.describe()} provides {key}, but {key} is already provided upstream "
                f"with {self.spec[key]}; use updates() to change it"
            )
        super().provides(key, spec)

    def enable_autoskip(self, skip=True):
        """Skip this filter for requests that contain none of the keys it
        ``updates()`` or ``provides()``. Call in ``setup()``."""
        self._autoskip_enabled = skip

    def skip_node(self, request):
        """Whether to skip this node for ``request``. By default: autoskip, if
        enabled, skips requests without any key this node updates or
        provides."""
        if not self.__dict__.get("_autoskip_enabled", False):
            return False
        for key, spec in request.items():
            if spec.placeholder:
                continue
            if key in self.provided_items or key in self.updated_items:
                return False
        return True

    def prepare(self, request):
        """Return the ``BatchRequest`` this node needs upstream to serve
        ``request`` (``None``: all of ``request``)."""
        return None

    def process(self, batch, request):
        """Modify ``batch`` (what upstream delivered for the dependencies) to
        meet ``request``. Return a ``Batch`` whose items replace those of
        ``batch``, or ``None`` if ``batch`` was changed in place."""
        raise NotImplementedError(f"{type(self).__name__} does not implement process()")

    def provide(self, request):
        from ..engine.execute import run_inline

        return run_inline(self, request, as_provide=True)

    def has_data_dependent_control_flow(self):
        return type(self).provide is not BatchFilter.provide and type(self).plan_upstream is BatchProvider.plan_upstream
