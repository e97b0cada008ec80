"""Config dataclasses that round-trip through plain JSON types.

A checkpoint stores ``config.to_dict()`` next to the weights; ``build_model(model_kind,
config_dict)`` (in ``models/__init__.py``) rebuilds the model from it.
"""

from __future__ import annotations

import dataclasses
from typing import Any


class JSONConfig:
    """Mixin for dataclasses: ``to_dict()`` gives lists/ints/floats/strs only,
    ``from_dict(d)`` rebuilds (lists back to tuples) and rejects unknown keys."""

    def to_dict(self) -> dict[str, Any]:
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            out[f.name] = list(v) if isinstance(v, tuple) else v
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]):
        names = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - set(names))
        if unknown:
            raise ValueError(f"{cls.__name__}.from_dict: unknown keys {unknown}; known: {sorted(names)}")
        kwargs = {}
        for k, v in d.items():
            default = names[k].default
            if isinstance(v, list) and (isinstance(default, tuple) or default is dataclasses.MISSING):
                v = tuple(v)
            kwargs[k] = v
        return cls(**kwargs)
