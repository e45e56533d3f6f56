"""`resattn data`: what a configuration's splits hold, and the missing-data error."""

import json

import pytest
from conftest import assert_user_error, cli

from resattn.cli import main


def test_data_summary(synthetic_cifar10, capsys):
    assert main(["data", "--data-dir", str(synthetic_cifar10), "--val-size", "100",
                 "--label-noise", "0.1", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["train_size"] == 900 and summary["val_size"] == 100
    assert summary["test_size"] == 200 and summary["noisy_labels"] == 90
    assert summary["classes"][0] == "airplane"


@pytest.mark.slow
def test_data_summary_real_cifar10(cifar10_dir, capsys):
    assert main(["data", "--data-dir", str(cifar10_dir), "--val-size", "1000",
                 "--label-noise", "0.1", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["train_size"] == 49000 and summary["val_size"] == 1000
    assert summary["noisy_labels"] == 4900
    assert summary["classes"][0] == "airplane"


def test_missing_data_is_one_line_error(tmp_path):
    proc = cli("data", "--data-dir", str(tmp_path), "--no-download")
    assert_user_error(proc, "put cifar-10-binary.tar.gz")
    assert list(tmp_path.iterdir()) == []
