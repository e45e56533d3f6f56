"""The ImageNet Attention-56/92 against the authors' deploy prototxts
(fwang91/residual-attention-network, imagenet_model/Attention-{56,92}-deploy.prototxt): the
multiset of convolution shapes (in, out, kernel; none has a bias) and of BN widths, read off the
prototxts' layers and written here as data, equals ours built with `mask_head_bias=False`; the
parameter counts then agree exactly (31,810,728 and 52,466,344; the paper's Table 2 gives 31.9M
and 51.3M, the second below what the authors' own prototxt describes)."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from torch import nn

from resattn.models import count_params, create_model

SHARED_CONVS = {(3, 64, 7): 1, (64, 64, 1): 1, (64, 64, 3): 13, (64, 256, 1): 14,
                (256, 64, 1): 12, (256, 128, 1): 1, (256, 256, 1): 2, (256, 512, 1): 1,
                (512, 256, 1): 1, (512, 512, 3): 3, (512, 1024, 1): 1, (512, 2048, 1): 3,
                (1024, 512, 1): 1, (1024, 2048, 1): 1, (2048, 512, 1): 2}
PROTOTXT = {
    "attention56_imagenet": {
        "convs": {**SHARED_CONVS, (128, 128, 3): 10, (128, 512, 1): 10, (256, 256, 3): 7,
                  (256, 1024, 1): 7, (512, 128, 1): 9, (512, 512, 1): 2, (1024, 256, 1): 6,
                  (1024, 1024, 1): 2},
        "bns": {64: 28, 128: 20, 256: 29, 512: 18, 1024: 9, 2048: 3},
        "params": 31_810_728},
    "attention92_imagenet": {
        "convs": {**SHARED_CONVS, (128, 128, 3): 19, (128, 512, 1): 19, (256, 256, 3): 19,
                  (256, 1024, 1): 19, (512, 128, 1): 18, (512, 512, 1): 4, (1024, 256, 1): 18,
                  (1024, 1024, 1): 6},
        "bns": {64: 28, 128: 38, 256: 53, 512: 29, 1024: 25, 2048: 3},
        "params": 52_466_344},
}


@pytest.mark.parametrize("name", list(PROTOTXT))
def test_imagenet_models_are_the_authors_graphs(name):
    with torch.device("meta"):
        model = create_model(name, mask_head_bias=False)
    convs = Counter((m.in_channels, m.out_channels, m.kernel_size[0])
                    for m in model.modules() if isinstance(m, nn.Conv2d))
    bns = Counter(m.num_features for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    assert convs == Counter(PROTOTXT[name]["convs"])
    assert all(m.bias is None for m in model.modules() if isinstance(m, nn.Conv2d))
    assert bns == Counter(PROTOTXT[name]["bns"])
    assert count_params(model) == PROTOTXT[name]["params"]
    # the default adds one bias per attention module's mask head: 256 + 512 + 1024 per 1/1/1
    with torch.device("meta"):
        default = count_params(create_model(name))
    assert default - PROTOTXT[name]["params"] == sum(
        m.soft_mask.head[-1].out_channels for _, m in model.attention_modules())
