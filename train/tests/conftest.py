import os
import sys

import torch

# Tests import the package as `train`; run from train/ (make test-py) or the repo root.
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
torch.set_num_threads(1)
