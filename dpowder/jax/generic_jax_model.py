"""``GenericJaxModel``: what ``jax.Train`` and ``jax.Predict`` call."""


class GenericJaxModel:
    """An interface for models to be trained and run by the jax nodes. It
    bundles the forward model, the loss and the optimizer; subclass it and
    implement the three methods.

    Args:

        is_training (``bool``): Whether the model is used for training.
    """

    def __init__(self, is_training):
        self.is_training = is_training

    def initialize(self, rng_key, inputs):
        """Return the initial parameters (any pytree) for ``inputs`` (a dict
        from the ``inputs`` names to numpy arrays)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement initialize()")

    def forward(self, params, inputs):
        """Return a dict from output names to arrays for ``inputs``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement forward()")

    def train_step(self, params, inputs, pmapped):
        """One training step: return ``(new_params, outputs, loss)``, with
        ``outputs`` a dict from output names to arrays and ``loss`` a float
        or a dict of named losses."""
        raise NotImplementedError(f"{type(self).__name__} does not implement train_step()")
