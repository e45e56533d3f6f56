"""resattn's safetensors wrapper (atomic writes, one-line errors) and files of the library's
own API read back the same, both ways; damaged files refused in one line."""

from __future__ import annotations

import json

import pytest
import safetensors.torch as st
import torch

from resattn.errors import UserError
from resattn.weights.safetensors import load_file, save_file

TENSORS = {"conv.weight": torch.randn(4, 3, 3, 3), "bn.num_batches_tracked": torch.tensor(7),
           "half": torch.randn(5).half(), "bf": torch.randn(2, 2).bfloat16(),
           "mask": torch.tensor([True, False]), "empty": torch.zeros(0, 3)}


def test_ours_read_by_the_library_and_back(tmp_path):
    save_file(TENSORS, tmp_path / "a.safetensors", {"model": "attention56"})
    theirs = st.load_file(tmp_path / "a.safetensors")
    assert theirs.keys() == TENSORS.keys()
    assert all(torch.equal(theirs[k], v) for k, v in TENSORS.items())
    st.save_file(TENSORS, tmp_path / "b.safetensors", metadata={"k": "v"})
    ours, meta = load_file(tmp_path / "b.safetensors")
    assert meta == {"k": "v"} and all(torch.equal(ours[k], v) for k, v in TENSORS.items())
    assert all(ours[k].dtype == v.dtype and ours[k].shape == v.shape for k, v in TENSORS.items())


@pytest.mark.parametrize("damage", ["empty", "huge header", "not json", "out of range",
                                    "overlapping"])
def test_damaged_files_are_one_line_errors(tmp_path, damage):
    path = tmp_path / "w.safetensors"
    save_file({"w": torch.ones(10)}, path)
    raw = bytearray(path.read_bytes())
    if damage == "empty":
        raw = bytearray()
    elif damage == "huge header":
        raw[:8] = (10**12).to_bytes(8, "little")
    elif damage == "not json":
        raw[8:12] = b"\xff\xfe\x00{"
    elif damage == "overlapping":  # two tensors over the same bytes
        entry = {"dtype": "F32", "shape": [10], "data_offsets": [0, 40]}
        header = json.dumps({"a": entry, "b": entry}).encode()
        raw = bytearray(len(header).to_bytes(8, "little") + header + bytes(40))
    else:
        raw = raw[:-8]  # the tensor's bytes end outside the file
    path.write_bytes(bytes(raw))
    with pytest.raises(UserError, match="not a valid safetensors file") as info:
        load_file(path)
    assert len(str(info.value).splitlines()) == 1


def test_an_install_without_the_package_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "safetensors.torch", None)
    with pytest.raises(UserError, match="needs the safetensors package: pip install"):
        load_file(tmp_path / "w.safetensors")
