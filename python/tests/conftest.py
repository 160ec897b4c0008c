# python/tests/conftest.py — shared fixtures: the repository's data, the example programs (for the
# bit-for-bit comparisons; CTest passes their folder in UNETCORE_BIN), the shipped model.
import os
import pathlib
import subprocess
import warnings

import numpy as np
import pytest

import unetcore

ROOT = pathlib.Path(__file__).resolve().parents[2]
STACK = ROOT / "tests" / "data" / "isbi-stack" / "train" / "images" / "isbi-20-22.tif"
STACK_LABELS = ROOT / "tests" / "data" / "isbi-stack" / "train" / "labels" / "isbi-20-22.tif"
TEST_SLICE = ROOT / "data" / "isbi2012" / "test" / "images" / "00.png"


@pytest.fixture(scope="session")
def model():
    """The shipped model on the CPU (its provisional-model warning is checked in test_model.py)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return unetcore.load_model("isbi2012-em", device="cpu")


@pytest.fixture(scope="session")
def program():
    """Runs an example program (segment, evaluate) from UNETCORE_BIN; skips without it."""
    bin_dir = os.environ.get("UNETCORE_BIN")
    if not bin_dir:
        pytest.skip("UNETCORE_BIN is not set (CTest sets it to the build's examples/)")

    def run(name, *args):
        done = subprocess.run([os.path.join(bin_dir, name), *map(str, args)], capture_output=True, text=True)
        assert done.returncode == 0, f"{name} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout
    return run


@pytest.fixture
def crop():
    """A 160 x 300 float32 crop of ISBI test slice 00 in [0, 1] (C-contiguous)."""
    image = unetcore.read_image(str(TEST_SLICE))[100:260, 50:350]
    return np.ascontiguousarray(image, dtype=np.float32) * np.float32(1 / 255)
