"""GDN (Balle et al. 2016) and GDN1 (Johnston et al. 2019), per channel i:

    GDN:  y[i] = x[i] / sqrt(beta[i] + sum_j gamma[i, j] * x[j]^2)
    GDN1: y[i] = x[i] / (beta[i] + sum_j gamma[i, j] * |x[j]|)

inverse=True multiplies by the normaliser instead. beta and gamma are stored
reparametrised (NonNegativeParametrizer) as CompressAI stores them."""
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..ops.parametrizers import NonNegativeParametrizer


class GDN(nn.Module):
    def __init__(self, in_channels, inverse=False, beta_min=1e-6, gamma_init=0.1):
        super().__init__()
        self.inverse = bool(inverse)
        self.beta_reparam = NonNegativeParametrizer(minimum=float(beta_min))
        self.beta = nn.Parameter(self.beta_reparam.init(torch.ones(in_channels)))
        self.gamma_reparam = NonNegativeParametrizer()
        self.gamma = nn.Parameter(self.gamma_reparam.init(float(gamma_init) * torch.eye(in_channels)))

    def _weights(self, channels):
        beta = self.beta_reparam(self.beta)
        gamma = self.gamma_reparam(self.gamma).reshape(channels, channels, 1, 1)
        return beta, gamma

    def forward(self, x):
        beta, gamma = self._weights(x.size(1))
        norm = F.conv2d(x * x, gamma, beta)
        return x * (torch.sqrt(norm) if self.inverse else torch.rsqrt(norm))


class GDN1(GDN):
    def forward(self, x):
        beta, gamma = self._weights(x.size(1))
        norm = F.conv2d(torch.abs(x), gamma, beta)
        return x * (norm if self.inverse else 1.0 / norm)
