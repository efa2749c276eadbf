"""EntropyBottleneck: train.entropy's re-implementation of CompressAI's
(parameters, buffers, update() and compress())."""
from train.entropy import EntropyBottleneck

__all__ = ["EntropyBottleneck"]
