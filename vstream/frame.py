"""The one frame type that flows between stages."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np


@dataclass(frozen=True)
class Frame:
    """A decoded video frame.

    ``rgb`` is ``(H, W, 3)`` uint8. ``pts`` and ``time_base`` are copied from the decoder and
    handed to the encoder unchanged; ``index`` is the frame's position in decode order.
    """

    index: int
    pts: int | None
    time_base: Fraction | None
    rgb: np.ndarray
