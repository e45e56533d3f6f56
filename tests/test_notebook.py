"""examples/quickstart.ipynb runs top to bottom on CPU with a tiny budget."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.slow  # spawns processes / builds packages

ROOT = Path(__file__).resolve().parents[1]


def test_quickstart_notebook_executes(cifar10_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("RESATTN_DATA_DIR", str(cifar10_dir))
    monkeypatch.setenv("QUICKSTART_TRAIN_SUBSET", "256")
    monkeypatch.setenv("QUICKSTART_EPOCHS", "1")
    monkeypatch.setenv("QUICKSTART_OUT", str(tmp_path / "runs"))
    nb = nbformat.read(ROOT / "examples" / "quickstart.ipynb", as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    pictures = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(pictures) == 3  # the curves and two mask overlays
    text = "".join(o.get("text", "") for o in outputs)
    assert "val accuracy" in text and "attention56: 1.03M parameters" in text
    (run,) = list((tmp_path / "runs").iterdir())
    assert (run / "curves.png").is_file() and (run / "masks_1.png").is_file()
