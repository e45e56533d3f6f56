import json
import subprocess
import sys

from conftest import assert_user_error

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
    assert_user_error(proc, "put cifar-10-binary.tar.gz")
    assert list(tmp_path.iterdir()) == []
