"""The model configs' serialiser, :class:`~interp4d_lite.jsonconfig.JSONConfig` (a module of its
own, without torch, that the training configs share); re-exported here."""

from ..jsonconfig import JSONConfig

__all__ = ["JSONConfig"]
