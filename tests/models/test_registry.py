"""Registry errors name what is wrong and what is valid; torch.hub entry points work."""

from pathlib import Path

import pytest
import torch

from resattn import create_model, list_models
from resattn.weights import list_weights


def test_unknown_model_lists_valid_names():
    with pytest.raises(ValueError, match="model='attention57' is not valid") as err:
        create_model("attention57")
    assert all(name in str(err.value) for name in list_models())


@pytest.mark.parametrize("kwargs,option", [
    ({"attention": "both"}, "attention"),
    ({"residual": "full"}, "residual"),
    ({"mask": "global"}, "mask"),
    ({"num_classes": 0}, "num_classes"),
    ({"num_classes": 2.5}, "num_classes"),
    ({"in_chans": -1}, "in_chans"),
    ({"drop_rate": 1.0}, "drop_rate"),
    ({"r": 0}, "r"),
    ({"t": "2"}, "t"),
])
def test_bad_option_names_the_option(kwargs, option):
    with pytest.raises(ValueError, match=rf"^{option}="):
        create_model("attention56", **kwargs)


def test_unknown_override_is_rejected():
    with pytest.raises(ValueError, match="unknown option.*colour"):
        create_model("attention56", colour="red")


def test_p_t_r_overrides_change_depth():
    small = create_model("attention56", p=0, t=1)
    default = create_model("attention56")
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in default.parameters())
    assert small(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_torch_hub_local_load():
    repo = Path(__file__).resolve().parents[2]
    model = torch.hub.load(str(repo), "attention56", source="local", num_classes=5)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 5)
    wide = torch.hub.load(str(repo), "attention92_wide", source="local")
    assert wide.num_classes == 10
    pretrained = torch.hub.load(str(repo), "attention56", source="local", pretrained=True)
    # the model's first published tag is its default
    assert pretrained.pretrained_cfg["source"] == list_weights("attention56.*")[0]
    with pytest.raises(ValueError, match="no published weights"):
        torch.hub.load(str(repo), "attention92", source="local", pretrained=True)


def test_list_models_with_a_pattern():
    assert list_models("attention5*") == ["attention56", "attention56_wide",
                                          "attention56_imagenet", "attention56_mini"]
    assert list_models("*imagenet") == ["attention56_imagenet", "attention92_imagenet"]
    assert list_models("nothing*") == []
    assert list_models() == list_models("*")


def test_reset_classifier_keeps_the_body():
    torch.manual_seed(0)
    model = create_model("attention56").eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        features = model.forward_head(model.forward_features(x), pre_logits=True)
    assert model.get_classifier() is model.fc and model.get_classifier().out_features == 10
    model.reset_classifier(5)
    assert model.num_classes == 5 and model.get_classifier().out_features == 5
    with torch.no_grad():
        assert model(x).shape == (2, 5)
        again = model.forward_head(model.forward_features(x), pre_logits=True)
    assert torch.equal(features, again)  # the body is untouched
    with pytest.raises(ValueError, match="num_classes=0 is not valid"):
        model.reset_classifier(0)


def test_architecture_dropout_applies_unless_overridden():
    assert create_model("attention56_mini").drop.p == 0.5  # the spec's own
    assert create_model("attention56_mini", drop_rate=0.1).drop.p == 0.1
    assert create_model("attention56").drop.p == 0.0
