"""LowerBound: max(x, bound) with a buffer "bound" (CompressAI's layout)."""
import torch
import torch.nn as nn


class LowerBound(nn.Module):
    def __init__(self, bound):
        super().__init__()
        self.register_buffer("bound", torch.Tensor([float(bound)]))

    def forward(self, x):
        return torch.max(x, self.bound)
