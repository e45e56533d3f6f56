"""`resattn data`: what a configuration's splits hold, the missing-data error, and the
download bar that --no-progress hides (here and in evaluate)."""

import json
from dataclasses import replace

import pytest
from conftest import assert_user_error, cli
from synthetic_data import write_tar

from resattn.cli import main
from resattn.data import cifar


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


@pytest.fixture
def cifar10_mirror(_synthetic_cifar10, tmp_path, monkeypatch):
    """The synthetic CIFAR-10 as an archive behind a file:// URL, so commands download it."""
    folder, source = _synthetic_cifar10
    archive = tmp_path / "mirror" / source.archive
    archive.parent.mkdir()
    names = (*source.data_files, "batches.meta.txt")
    md5 = write_tar(archive, {f"{source.folder}/{n}": (folder / n).read_bytes() for n in names})
    monkeypatch.setitem(cifar.SOURCES, "cifar10",
                        replace(source, url=archive.as_uri(), archive_md5=md5))


@pytest.mark.parametrize("command", ["data", "evaluate"])
def test_no_progress_hides_the_download_bar_and_changes_nothing_else(command, cifar10_mirror,
                                                                      small_run, tmp_path):
    args = {"data": ["data", "--val-size", "100"],
            "evaluate": ["evaluate", str(small_run), "--amp", "off", "--test-subset", "50"]}
    runs = {}
    for shown in (True, False):
        data = tmp_path / ("shown" if shown else "hidden") / "data"
        data.mkdir(parents=True)
        proc = cli(*args[command], "--data-dir", str(data), *([] if shown else ["--no-progress"]))
        assert proc.returncode == 0, proc.stderr
        assert (data / cifar.CIFAR10.archive).is_file()  # downloaded either way
        runs[shown] = proc
    assert "download cifar-10-binary.tar.gz" in runs[True].stderr
    assert "download" not in runs[False].stderr
    assert runs[False].stdout.replace("hidden", "shown") == runs[True].stdout
