import json
import subprocess
import sys

from resattn.cli import main


def test_data_summary_real_cifar10(cifar10_dir, capsys):
    assert main(["data", "--data-dir", str(cifar10_dir), "--val-size", "1000",
                 "--label-noise", "0.1", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["train_size"] == 49000 and summary["val_size"] == 1000
    assert summary["noisy_labels"] == 4900
    assert summary["classes"][0] == "airplane"


def test_missing_data_is_one_line_error(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "resattn", "data", "--data-dir",
                           str(tmp_path), "--no-download"], capture_output=True, text=True)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "put cifar-10-binary.tar.gz" in lines[0]
    assert list(tmp_path.iterdir()) == []
