"""Shared fixtures and helpers: the real CIFAR-10 (from $RESATTN_TEST_CIFAR10 or ../shared), a
trained 3-epoch run, the `slow` tier, and `cli` / `assert_user_error` for command-line tests
(`from conftest import cli`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


# A guard against a hung process, never what a test decides by: generous for a slow machine
HANG = 3600


def cli(*args: str, timeout: float = HANG, **kw) -> subprocess.CompletedProcess:
    """`resattn ARGS...` in a fresh process, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "resattn", *args], capture_output=True,
                          text=True, timeout=timeout, **kw)


def assert_user_error(proc: subprocess.CompletedProcess, match: str | None = None) -> None:
    """A user mistake: exit 2, one line on stderr, no traceback (and `match` in it)."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    if match is not None:
        assert match in lines[0], lines[0]
SHARED_TOOL = ROOT.parent / "shared" / "tools" / "cifar10_unpack.py"


@pytest.fixture(scope="session")
def cifar10_dir(tmp_path_factory) -> Path:
    """Folder holding the six official CIFAR-10 binary files, verified by MD5:
    $RESATTN_TEST_CIFAR10, else an unpacked copy of the team's data beside the checkout, else
    the normal data lookup."""
    env = os.environ.get("RESATTN_TEST_CIFAR10")
    if env and (Path(env) / "data_batch_1.bin").is_file():
        return Path(env).resolve()  # tests change directories (the notebook kernel does)
    if SHARED_TOOL.is_file():
        dest = tmp_path_factory.mktemp("cifar10")
        out = subprocess.run([sys.executable, str(SHARED_TOOL), str(dest)], check=True,
                             capture_output=True, text=True).stdout.strip()
        return Path(out)
    # as users get it: $RESATTN_DATA_DIR, else ~/.cache/resattn, else downloaded (MD5 checked)
    from resattn.data.cifar import SOURCES, locate
    from resattn.errors import UserError

    try:
        return locate(SOURCES["cifar10"], None, download_ok=True, progress=False).resolve()
    except UserError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI must provide the real CIFAR-10: {exc}")
        pytest.skip(f"the real CIFAR-10 is not available on this machine: {exc}")

# A short CPU run on the real CIFAR-10, shared by the tests that need a trained checkpoint.
# 500 stratified test images: the final evaluation of 10,000 would cost more than the training
SMALL_RUN = ["--model", "attention56", "--train-subset", "384", "--val-size", "256",
             "--test-subset", "500", "--batch-size", "64", "--epochs", "3", "--lr", "0.05",
             "--schedule", "cosine", "--seed", "3", "--no-progress", "--eval-batch-size", "256"]


@pytest.fixture(scope="session")
def small_run(cifar10_dir, tmp_path_factory) -> Path:
    """Run directory of a finished 3-epoch run (its last.pt, best.pt, metrics, summary)."""
    out = tmp_path_factory.mktemp("small_run")
    proc = subprocess.run([sys.executable, "-m", "resattn", "train", *SMALL_RUN, "--data-dir",
                           str(cifar10_dir), "--out", str(out)], capture_output=True, text=True,
                          timeout=HANG)
    assert proc.returncode == 0, proc.stderr
    (run,) = list(out.iterdir())
    return run
