import json
import platform

import pytest
import torch
from conftest import assert_user_error, cli

from resattn.api.catalog import model_rows
from resattn.cli import main
from resattn.models import list_models
from resattn.models.stats import live_stats, model_stats
from resattn.provenance import cpu_model_and_flags
from resattn.runtime import cpu_has_native_bf16


def test_models_table(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    lines = out.strip().splitlines()
    assert lines[0].split()[:3] == ["model", "params", "FLOPs"]
    assert [line.split()[0] for line in lines[1:]] == list_models()
    assert "1.84M" in out  # attention92


def test_models_pretrained_lists_every_published_weight_in_aligned_columns(capsys):
    from resattn.weights import get_weights, list_weights

    assert main(["models", "--pretrained"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[0] for line in lines[1:]] == list_weights()
    # the accuracy column starts at the same place on every line, whatever the tag's length
    assert len({line.index("%") for line in lines[1:]}) == 1
    for line, tag in zip(lines[1:], list_weights()):
        assert f"{100 * get_weights(tag)['metrics']['top1']:.2f}%" in line
    assert main(["models", "--pretrained", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["sha256"] for r in rows] == [get_weights(t)["sha256"] for t in list_weights()]


def test_models_json_for_other_classes_matches_a_live_count(capsys):
    assert main(["models", "--format", "json", "--num-classes", "100"]) == 0
    rows = json.loads(capsys.readouterr().out)
    by_name = {r["name"]: r for r in rows}
    assert by_name["attention56_imagenet"]["input_size"] == 224
    # the table's counts, adjusted to 100 classes, equal a model built with 100 classes
    live = live_stats("attention56", num_classes=100)
    assert by_name["attention56"]["params"] == live["params"]
    assert by_name["attention56"]["flops"] == live["flops"]
    assert by_name["attention56"]["num_classes"] == 100


@pytest.mark.slow
def test_shipped_table_matches_the_models():
    """The table `resattn models` reads is what the architecture table builds today; after a
    change to the registry, regenerate it with resattn.models.stats.write_table()."""
    for name in list_models():
        assert model_stats(name) == live_stats(name), name


def test_models_listing_builds_no_model(monkeypatch):
    """The listing reads the shipped table (what keeps `resattn models` instant); only
    --flops builds the models."""
    import resattn.models.stats as stats

    def build(*args, **kwargs):
        raise AssertionError("a model was built")

    monkeypatch.setattr(stats, "live_stats", build)
    assert [r["name"] for r in model_rows()] == list_models()
    with pytest.raises(AssertionError, match="built"):
        model_rows(recount=True)


def test_bad_flag_value_is_one_line_error():
    proc = cli("models", "--num-classes", "0")
    assert_user_error(proc, "resattn models: error: --num-classes 0 is not valid; it must be >= 1")


def test_version(capsys):
    import resattn

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == (f"resattn {resattn.__version__} (torch {torch.__version__}, "
                        f"Python {platform.python_version()})")
    # what a bug report needs: the CPU with its flags and the precision the default picks there
    model, _ = cpu_model_and_flags()
    precision = "bf16" if cpu_has_native_bf16() else "fp32"
    assert lines[1].startswith(f"cpu: {model}") and lines[1].endswith(
        f"; default precision {precision}")
    assert len(lines) == 2 + (torch.cuda.device_count() if torch.cuda.is_available() else 0)


def test_version_names_the_precision_of_each_cpu_kind(monkeypatch, capsys):
    for forced, precision in (("1", "bf16"), ("0", "fp32")):
        monkeypatch.setenv("RESATTN_CPU_BF16", forced)
        with pytest.raises(SystemExit):
            main(["--version"])
        assert capsys.readouterr().out.splitlines()[1].endswith(f"default precision {precision}")
