import os
import sys

import torch

# Tests import the package as `train`; run from train/ (make test-py) or the repo root.
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
torch.set_num_threads(1)


import shutil
import subprocess

import pytest


@pytest.fixture(scope="session")
def splitstream_bin(tmp_path_factory):
    """The splitstream binary the exporter's parity gate runs: $SPLITSTREAM_BIN,
    or built from this checkout once per session (skips without Go)."""
    path = os.environ.get("SPLITSTREAM_BIN")
    if path and os.access(path, os.X_OK):
        return path
    go = shutil.which("go") or "/usr/local/go/bin/go"
    if not os.path.exists(go):
        pytest.skip("no Go toolchain: the exporter's parity gate needs the splitstream binary")
    path = str(tmp_path_factory.mktemp("bin") / "splitstream")
    subprocess.run([go, "build", "-o", path, "./cmd/splitstream"], cwd=ROOT, check=True)
    os.environ["SPLITSTREAM_BIN"] = path
    return path


@pytest.fixture(scope="session")
def engines(splitstream_bin):
    """The engines the gate runs: native, and ort where its library is."""
    lib = os.environ.get("SPLITSTREAM_ORT_LIB") or os.path.join(ROOT, "third_party", "ort", "libonnxruntime.so")
    return ("native", "ort") if os.path.exists(lib) else ("native",)

# CompressAI's module paths for the exporter's tests, after any installed CompressAI.
sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), "compressai_stub"))
