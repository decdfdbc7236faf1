"""The one frame type that flows between stages."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from . import colour


@dataclass(frozen=True)
class Frame:
    """A decoded video frame.

    ``i420`` is the picture as yuv420p planes, ``(H * 3 // 2, W)`` uint8 (see
    :mod:`vstream.stages.colour`; an odd-sized picture is padded to even size, :mod:`vstream.stages.avframes`),
    or in the 4:4:4 or 16-bit forms :mod:`vstream.stages.colour` describes, where input and output both hold them. ``pts`` and ``time_base`` are copied from the decoder and handed to
    the encoder unchanged; ``index`` is the frame's position in decode order. ``colour_tags``:
    the input's colorspace, range, primaries and transfer, which the encoder puts on its stream.
    """

    index: int
    pts: int | None
    time_base: Fraction | None
    i420: np.ndarray
    colour_tags: Mapping[str, int] = field(default_factory=dict)

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of the picture."""
        return colour.size(self.i420)
