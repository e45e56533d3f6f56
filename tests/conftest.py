"""Shared fixtures and helpers.

The fast tier runs in this process on synthetic data: `cli` calls `resattn.cli.main`,
`synthetic_cifar10` is a small learnable CIFAR-10 in the official binary layout, `small_run` a
finished run trained on it. The slow tier has what must be real: `spawn` (a fresh process),
`cifar10_dir` (the real CIFAR-10, from $RESATTN_TEST_CIFAR10 or the data lookup), `real_run`.
"""

from __future__ import annotations

import contextlib
import gc
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from synthetic_data import cifar10_folder

from resattn.cli import main
from resattn.data import cifar

ROOT = Path(__file__).resolve().parents[1]


def pytest_configure(config) -> None:
    """Under pytest-xdist (`-n N`) the cores are shared out among the workers, so that N torch
    processes never ask for more threads than the machine has."""
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if workers:
        import torch

        torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(workers)))


def pytest_collection_finish(session) -> None:
    """What is loaded by now (torch, the test modules) lives as long as the session: keep it out
    of the cyclic garbage collector's full passes, which otherwise walk it again and again."""
    gc.freeze()


# A guard against a hung process, never what a test decides by: generous for a slow machine
HANG = 3600


def cli(*args: str) -> subprocess.CompletedProcess:
    """`resattn ARGS...` in this process: its exit status and what it printed."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse: --help, usage errors
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            if isinstance(exc.code, str):
                print(exc.code, file=sys.stderr)
    return subprocess.CompletedProcess(["resattn", *args], code, out.getvalue(), err.getvalue())


def spawn(*args: str, timeout: float = HANG, **kw) -> subprocess.CompletedProcess:
    """`resattn ARGS...` in a fresh process, as a user runs it (the slow tier)."""
    return subprocess.run([sys.executable, "-m", "resattn", *args], capture_output=True,
                          text=True, timeout=timeout, **kw)


def assert_user_error(proc: subprocess.CompletedProcess, match: str | None = None) -> None:
    """A user mistake: exit 2, one line on stderr, no traceback (and `match` in it)."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    if match is not None:
        assert match in lines[0], lines[0]


def assert_same_state(a, b) -> None:
    """Two models (or two state dicts) hold the same tensors under the same names."""
    sa = a.state_dict() if hasattr(a, "state_dict") else a
    sb = b.state_dict() if hasattr(b, "state_dict") else b
    assert sa.keys() == sb.keys()
    import torch

    different = [k for k in sa if not torch.equal(sa[k], sb[k])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"


@pytest.fixture(scope="session")
def _synthetic_cifar10(tmp_path_factory) -> tuple[Path, cifar.CifarSource]:
    return cifar10_folder(tmp_path_factory.mktemp("synthetic") / "cifar-10-batches-bin")


@pytest.fixture
def synthetic_cifar10(_synthetic_cifar10, monkeypatch) -> Path:
    """Folder of a synthetic CIFAR-10 (1,000 training and 200 test images whose classes can be
    learnt), accepted as the real one by this process for the length of the test."""
    folder, source = _synthetic_cifar10
    monkeypatch.setitem(cifar.SOURCES, "cifar10", source)
    return folder


# A short run on the synthetic CIFAR-10, shared by the tests that need a trained checkpoint
SYNTHETIC_RUN = ["--model", "attention_test", "--train-subset", "128", "--val-size", "100",
                 "--batch-size", "32", "--epochs", "2", "--lr", "0.1", "--schedule", "cosine",
                 "--seed", "3", "--no-progress", "--amp", "off", "--eval-batch-size", "100"]


@pytest.fixture(scope="session")
def small_run(_synthetic_cifar10, tmp_path_factory) -> Path:
    """Run directory of a finished 2-epoch run on the synthetic CIFAR-10 (its last.pt, best.pt,
    metrics, summary)."""
    folder, source = _synthetic_cifar10
    out = tmp_path_factory.mktemp("small_run")
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(cifar.SOURCES, "cifar10", source)
        proc = cli("train", *SYNTHETIC_RUN, "--data-dir", str(folder), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    (run,) = list(out.iterdir())
    return run


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

# A short CPU run on the real CIFAR-10, for the slow tests that need one trained on real images.
# 500 stratified test images: the final evaluation of 10,000 would cost more than the training
SMALL_RUN = ["--model", "attention56", "--train-subset", "384", "--val-size", "256",
             "--test-subset", "500", "--batch-size", "64", "--epochs", "3", "--lr", "0.05",
             "--schedule", "cosine", "--seed", "3", "--no-progress", "--eval-batch-size", "256"]


@pytest.fixture(scope="session")
def real_run(cifar10_dir, tmp_path_factory) -> Path:
    """Run directory of a finished 3-epoch run on the real CIFAR-10, trained in a fresh process."""
    out = tmp_path_factory.mktemp("real_run")
    proc = subprocess.run([sys.executable, "-m", "resattn", "train", *SMALL_RUN, "--data-dir",
                           str(cifar10_dir), "--out", str(out)], capture_output=True, text=True,
                          timeout=HANG)
    assert proc.returncode == 0, proc.stderr
    (run,) = list(out.iterdir())
    return run


REAL = {"cifar10_dir", "real_run"}  # fixtures of the slow tier only


def pytest_collection_modifyitems(items):
    """The fast tier is the same on every machine: a test that asks for the real data or a run
    trained on it must be marked slow."""
    for item in items:
        needs = REAL & set(getattr(item, "fixturenames", ()))
        if needs and item.get_closest_marker("slow") is None:
            raise pytest.UsageError(f"{item.nodeid} uses {', '.join(sorted(needs))} but is not "
                                    "marked slow")
