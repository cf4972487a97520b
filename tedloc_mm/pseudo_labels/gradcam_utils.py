"""Helpers shared by the Grad-CAM generators (pytorch_grad_cam based)."""
from typing import Callable, Optional

import torch
from torch import nn


def get_module(root: nn.Module, dotted: str) -> nn.Module:
    """``'backbone.layers.-1.ln1'`` -> that submodule (negative indices allowed)."""
    module = root
    for part in dotted.split('.'):
        try:
            module = module[int(part)] if part.lstrip('-').isdigit() else getattr(module, part)
        except (AttributeError, IndexError, TypeError):
            raise ValueError(f'no submodule {dotted!r} in {type(root).__name__} '
                             f'(failed at {part!r})') from None
    return module


def tokens_to_map(grid_hw: Optional[tuple] = None) -> Callable:
    """A pytorch_grad_cam ``reshape_transform``: ViT tokens (B, N, C) -> (B, C, h, w).

    The leading ``N - h*w`` tokens (class / register tokens) are dropped. Without
    ``grid_hw`` the grid is taken square. 4-D inputs (CNN features) pass unchanged.
    """

    def reshape(x: torch.Tensor) -> torch.Tensor:
        if isinstance(x, (tuple, list)):
            x = x[0]
        if x.dim() == 4:
            return x
        if x.dim() != 3:
            raise ValueError(f'expected tokens (B, N, C), got shape {tuple(x.shape)}')
        n = x.shape[1]
        if grid_hw is not None:
            h, w = grid_hw
        else:
            side = int((n - 1)**0.5 + 1e-6)
            while side * side > n:
                side -= 1
            h = w = side
        if h * w > n:
            raise ValueError(f'{n} tokens cannot hold a {h}x{w} grid')
        return x[:, n - h * w:, :].reshape(x.shape[0], h, w, x.shape[2]).permute(0, 3, 1, 2)

    return reshape
