"""Windows of a series: two frames ``a`` and ``b = a + gap`` and the frames between them, with
indices taken modulo the number of frames when the series is one cycle (a heartbeat, a breath).

A window's ``triplets()`` are the training and test items of a series whose every frame is
known: ``(a, k, b, t)`` with ``t = (k - a) / gap`` for each frame ``k`` strictly inside.
:func:`cine_windows` lists every window of a series at the given gaps;
:class:`~interp4d_lite.data.CineTriplets` serves their triplets for training and
:mod:`interp4d_lite.adapt` those of one scan outside the interval to interpolate.
No torch, no numpy: the command-line parser may import it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Window", "cine_windows"]


@dataclass(frozen=True)
class Window:
    """Frames ``a`` and ``b = a + gap`` of a series (indices modulo the number of frames when
    the series is cyclic) with the frames between them as targets."""

    a: int
    gap: int
    n: int  # frames in the series

    @property
    def b(self) -> int:
        return (self.a + self.gap) % self.n

    @property
    def indices(self) -> list[int]:
        """The index of every frame of the window, ends included, in time order."""
        return [(self.a + k) % self.n for k in range(self.gap + 1)]

    @property
    def frames(self) -> list[int]:
        """The older name of :attr:`indices`."""
        return self.indices

    def triplets(self) -> list[tuple[int, int, int, float]]:
        """``(a, k, b, t)`` for each frame ``k`` strictly inside, ``t = (k - a) / gap``."""
        return [(self.a, (self.a + k) % self.n, self.b, k / self.gap) for k in range(1, self.gap)]


def cine_windows(n: int, gaps: Iterable[int], cyclic: bool = True) -> list[Window]:
    """Every window of an ``n``-frame series with a gap in ``gaps`` (2 <= gap < n): from each
    start frame when ``cyclic`` (windows wrap from the last frame to the first), else only those
    that end by the last frame. Ordered by gap, then start."""
    out = []
    for gap in sorted(set(int(g) for g in gaps)):
        if not 2 <= gap < n:
            raise ValueError(f"cine_windows: a gap must be 2..{n - 1} for {n} frames, got {gap}")
        out += [Window(a, gap, n) for a in range(n if cyclic else n - gap)]
    return out
