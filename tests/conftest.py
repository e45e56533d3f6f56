"""Shared fixtures: the real CIFAR-10 (from $RESATTN_TEST_CIFAR10 or ../shared) and helpers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_TOOL = ROOT.parent / "shared" / "tools" / "cifar10_unpack.py"


@pytest.fixture(scope="session")
def cifar10_dir(tmp_path_factory) -> Path:
    """Folder holding the six official CIFAR-10 binary files, verified by MD5."""
    env = os.environ.get("RESATTN_TEST_CIFAR10")
    if env and (Path(env) / "data_batch_1.bin").is_file():
        return Path(env)
    if SHARED_TOOL.is_file():
        dest = tmp_path_factory.mktemp("cifar10")
        out = subprocess.run([sys.executable, str(SHARED_TOOL), str(dest)], check=True,
                             capture_output=True, text=True).stdout.strip()
        return Path(out)
    if os.environ.get("CI"):
        pytest.fail("CI must provide the real CIFAR-10 (RESATTN_TEST_CIFAR10 or ../shared)")
    pytest.skip("the real CIFAR-10 is not available on this machine")
