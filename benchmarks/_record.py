"""What every benchmark writes next to its numbers: the command, the machine, the versions."""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path

import torch
import torchvision


def environment() -> dict:
    """The command line, device, CPU count and library versions of this run."""
    return {
        "command": "python " + " ".join([os.path.relpath(sys.argv[0])] + sys.argv[1:]),
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "machine": platform.platform(),
        "python": platform.python_version(), "torch": torch.__version__, "torchvision": torchvision.__version__,
    }


def write_record(path: Path, record: dict, hide: tuple[str, ...] = ("history", "profile")) -> None:
    """Write ``record`` plus ``environment()`` as JSON to ``path`` and print it (minus ``hide``)."""
    record = {**environment(), **record}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1))
    print(json.dumps({k: v for k, v in record.items() if k not in hide}, indent=1))
