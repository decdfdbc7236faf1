"""Training side: the PyTorch network, losses, data and export. Needs ``pip install "vstream[train]"``."""

from __future__ import annotations

try:
    import torch  # noqa: F401
except ImportError as exc:  # the cleaner never imports this package
    raise ImportError('training and export need PyTorch: pip install "vstream[train]"') from exc
