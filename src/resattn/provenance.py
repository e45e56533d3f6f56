"""What made a result: package versions, the device (CPU model and its bf16/AMX/VNNI flags, or the
GPU), threads and date, recorded in every summary.json so published figures can be traced."""

from __future__ import annotations

import datetime
import platform
from pathlib import Path
from typing import Any

import torch

CPU_FLAGS = ("avx512_bf16", "amx_tile", "avx512_vnni", "avx512f")


def cpu_model_and_flags() -> tuple[str, list[str]]:
    """The CPU's model name and which of CPU_FLAGS it reports (Linux /proc/cpuinfo; elsewhere
    the platform's processor string and no flags)."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and ":" in line:
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and ":" in line:
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    return model, [f for f in CPU_FLAGS if f in flags]


def device_name(device: torch.device) -> str:
    """'NVIDIA H200' or 'AMD EPYC (avx512_bf16, avx512_vnni, avx512f), 2 threads'."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model, flags = cpu_model_and_flags()
    extra = f" ({', '.join(flags)})" if flags else ""
    threads = torch.get_num_threads()
    return f"{model}{extra}, {threads} thread{'s' if threads != 1 else ''}"


def environment(device: torch.device) -> dict[str, Any]:
    from . import __version__

    env = {"resattn": __version__, "torch": torch.__version__,
           "python": platform.python_version(), "device_name": device_name(device),
           "threads": torch.get_num_threads(),
           "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
    if device.type == "cuda":
        env["cuda"] = torch.version.cuda
    return env
