"""Config dataclasses that round-trip through plain JSON types: the model configs and the
training configs alike (imports no torch, so the command line parses without it).

A checkpoint stores ``config.to_dict()`` next to the weights; ``build_model(model_kind,
config_dict)`` (in ``models/__init__.py``) rebuilds the model from it.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar


class JSONConfig:
    """Mixin for dataclasses: ``to_dict()`` gives lists/ints/floats/strs/dicts only,
    ``from_dict(d)`` rebuilds (lists back to tuples for tuple fields) and rejects unknown keys.

    A class with ``UNKNOWN_KEYS = "ignore"`` skips unknown keys instead (the training configs:
    a checkpoint of another version may hold keys this one no longer has)."""

    UNKNOWN_KEYS: ClassVar[str] = "reject"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (tuples as lists), as stored in checkpoints."""
        out = dataclasses.asdict(self)
        for k, v in out.items():
            if isinstance(v, tuple):
                out[k] = list(v)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]):
        """Inverse of :meth:`to_dict`."""
        names = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - set(names))
        if unknown and cls.UNKNOWN_KEYS != "ignore":
            raise ValueError(f"{cls.__name__}.from_dict: unknown keys {unknown}; known: {sorted(names)}")
        kwargs = {}
        for k, v in d.items():
            if k not in names:
                continue
            f = names[k]
            if isinstance(v, list) and (
                isinstance(f.default, tuple) or f.default is dataclasses.MISSING or "tuple" in str(f.type)
            ):
                v = tuple(v)
            kwargs[k] = v
        return cls(**kwargs)
