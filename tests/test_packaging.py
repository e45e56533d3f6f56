"""The wheel a plain `pip install .` builds carries every data file the package reads."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # spawns processes / builds packages

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "resattn"


def test_wheel_ships_recipes_suites_and_type_marker(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps",
                           "--no-build-isolation", "-q", "-w", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = tmp_path.glob("resattn-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    data = [p.relative_to(PACKAGE.parent).as_posix()
            for folder in ("recipes", "suites") for p in (PACKAGE / folder).glob("*.toml")]
    assert len(data) >= 8  # 2 recipes, 6 suites
    missing = [name for name in data if name not in names]
    assert not missing, f"not in the wheel: {missing}"
    assert "resattn/py.typed" in names
    # the licence as an SPDX expression with its file: no deprecation notices while building
    assert "Deprecat" not in proc.stderr + proc.stdout, (proc.stderr + proc.stdout)[-2000:]
    meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
    metadata = zipfile.ZipFile(wheel).read(meta).decode()
    assert "License-Expression: MIT" in metadata and "License-File: LICENSE" in metadata
