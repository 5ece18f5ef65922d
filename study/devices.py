"""Which device trains: the ``device`` setting (``auto``, ``cpu`` or ``cuda``) made concrete."""

from __future__ import annotations

import torch

from study.errors import ConfigError


def pick_device(choice: str) -> torch.device:
    """``auto`` takes CUDA when it is visible; ``cuda`` without it is refused with the fix."""
    if choice == "cpu" or (choice == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ConfigError("device=cuda but no CUDA device is visible; use device=auto or cpu")
    return torch.device("cuda")
