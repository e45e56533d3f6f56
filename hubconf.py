"""torch.hub entry points: `torch.hub.load(CLONE, "attention56", source="local", num_classes=10)`
on a clone, or `torch.hub.load("OWNER/REPO", ...)` on a GitHub copy.

Every registered model is an entry point taking the keyword arguments of
`resattn.create_model`; `pretrained=True` loads its published weights
(`resattn.list_models(pretrained=True)`), checked against their SHA-256.
"""

import os
import sys

dependencies = ["torch", "numpy"]

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "src"))

from resattn.models import create_model, list_models  # noqa: E402


def _entry_point(name):
    def build(pretrained=False, **kwargs):
        return create_model(name, pretrained=pretrained, **kwargs)

    build.__name__ = name
    build.__doc__ = f"{name}: see resattn.create_model for the keyword arguments."
    return build


for _name in list_models():
    globals()[_name] = _entry_point(_name)
