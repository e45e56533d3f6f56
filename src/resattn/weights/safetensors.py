"""The safetensors format (https://huggingface.co/docs/safetensors), read and written without
pickle and without the `safetensors` package: 8 bytes of little-endian header length, a JSON
header naming each tensor's dtype, shape and byte range (and a `__metadata__` table of strings),
then the raw little-endian bytes. The tests check these files against the official library."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..errors import UserError
from ..files import replacing

DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
          torch.float64: "F64", torch.int64: "I64", torch.int32: "I32", torch.int16: "I16",
          torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL"}
BY_NAME = {v: k for k, v in DTYPES.items()}
MAX_HEADER = 100_000_000  # the library's own limit


def _bytes(t: torch.Tensor) -> bytes:
    """The tensor's bytes in memory order: little-endian on every platform torch supports."""
    return t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def save_file(tensors: dict[str, torch.Tensor], path: str | Path,
              metadata: dict[str, str] | None = None) -> Path:
    """Write `tensors` (names sorted) and string `metadata` atomically to `path`."""
    path = Path(path)
    header: dict[str, object] = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    chunks, offset = [], 0
    for name in sorted(tensors):
        t = tensors[name]
        if t.dtype not in DTYPES:
            raise ValueError(f"{name}: dtype {t.dtype} has no safetensors code")
        raw = _bytes(t)
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned
    with replacing(path, what="the weights") as tmp, tmp.open("wb") as f:
        f.write(len(text).to_bytes(8, "little"))
        f.write(text)
        for raw in chunks:
            f.write(raw)
    return path


def load_file(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors, metadata) of a safetensors file; a damaged file is a one-line UserError."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read {path} ({exc.strerror or exc})") from None

    def bad(why: str) -> UserError:
        return UserError(f"{path} is not a valid safetensors file ({why})")

    if len(data) < 8:
        raise bad("too short")
    size = int.from_bytes(data[:8], "little")
    if size > MAX_HEADER or 8 + size > len(data):
        raise bad("header length out of range")
    try:
        header = json.loads(data[8:8 + size])
    except ValueError:
        raise bad("header is not JSON") from None
    if not isinstance(header, dict):
        raise bad("header is not a table")
    metadata = header.pop("__metadata__", None) or {}
    body = memoryview(data)[8 + size:]
    tensors = {}
    for name, info in header.items():
        try:
            dtype = BY_NAME[info["dtype"]]
            begin, end = (int(v) for v in info["data_offsets"])
            shape = [int(v) for v in info["shape"]]
        except (KeyError, TypeError, ValueError):
            raise bad(f"entry {name!r} is malformed") from None
        count = 1
        for dim in shape:
            count *= dim
        itemsize = torch.empty((), dtype=dtype).element_size()
        if not 0 <= begin <= end <= len(body) or end - begin != count * itemsize:
            raise bad(f"entry {name!r} points outside the file")
        raw = bytearray(body[begin:end])
        if not count:
            tensors[name] = torch.empty(shape, dtype=dtype)
            continue
        tensors[name] = torch.frombuffer(raw, dtype=torch.uint8).view(dtype).reshape(shape)
    return tensors, {str(k): str(v) for k, v in metadata.items()}
