import json
import subprocess
import sys

import pytest

from resattn.cli import main
from resattn.models import list_models


@pytest.mark.slow
def test_models_table(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    lines = out.strip().splitlines()
    assert lines[0].split()[:3] == ["model", "params", "FLOPs"]
    assert [line.split()[0] for line in lines[1:]] == list_models()
    assert "1.84M" in out  # attention92


@pytest.mark.slow
def test_models_json(capsys):
    assert main(["models", "--format", "json", "--num-classes", "100"]) == 0
    rows = json.loads(capsys.readouterr().out)
    by_name = {r["name"]: r for r in rows}
    assert by_name["attention56"]["num_classes"] == 100
    assert by_name["attention56_imagenet"]["input_size"] == 224
    assert by_name["attention56"]["flops"] < by_name["attention92"]["flops"]


def test_bad_flag_value_is_one_line_error():
    proc = subprocess.run([sys.executable, "-m", "resattn", "models", "--num-classes", "0"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "resattn models: error: num_classes=0 is not valid; it must be an integer >= 1"]
    assert "Traceback" not in proc.stderr


def test_version(capsys):
    import pytest

    import resattn

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip().startswith(f"resattn {resattn.__version__} (torch ")
