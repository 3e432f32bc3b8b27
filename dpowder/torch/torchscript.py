"""``TorchScriptModel``: a TorchScript file as a picklable module.

A ``torch.jit.ScriptModule`` does not pickle, but a blockwise job ships its
nodes to every worker. This module pickles as its path and loads the file
once per process, on first use.
"""

import torch


class TorchScriptModel(torch.nn.Module):
    """The TorchScript model saved at ``path``, loaded lazily.

    Args:

        path (str): A file written by ``torch.jit.save``.
    """

    def __init__(self, path):
        super().__init__()
        self.path = path
        self._loaded = None

    def _model(self):
        if self._loaded is None:
            # a plain attribute, not a registered submodule: never pickled
            object.__setattr__(self, "_loaded", torch.jit.load(self.path, map_location="cpu"))
        return self._loaded

    def forward(self, *args, **kwargs):
        return self._model()(*args, **kwargs)

    def to(self, *args, **kwargs):
        object.__setattr__(self, "_loaded", self._model().to(*args, **kwargs))
        return self

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_loaded"] = None
        return state
