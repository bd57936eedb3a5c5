"""Committed benchmark records (``benchmarks/results/*.json``), readable wherever the package runs.

The chapters quote runs too long to repeat on every execution (GPU runs, 800-step sweeps) from
the JSON records the benchmarks write to ``benchmarks/results/``. A notebook opened alone (on
Colab, or copied out of the repository) has no such folder beside it, so the records also ship
with the package: a non-editable install (``pip install .``, or Colab's ``pip install git+...``)
puts a copy of every ``benchmarks/results/*.json`` under ``sslcourse/_records/`` (the
``package-dir`` mapping in pyproject.toml; the repository keeps one copy of each record).

Course: :ref:`ch0-first-run`, :ref:`ch5-why-h`, :ref:`ch6-seven-methods` (pages that quote committed records).
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # importlib.resources.abc is 3.11+; only annotations use it
    from importlib.resources.abc import Traversable

# In a checkout (editable install, or PYTHONPATH at the repository root) the package sits beside
# benchmarks/: read the records the benchmarks write, so a re-run benchmark shows at once.
CHECKOUT_RECORDS = Path(__file__).resolve().parent.parent / "benchmarks" / "results"


def records_dir() -> Traversable:
    """Return the folder the records are read from: the checkout's, else the installed copy."""
    if CHECKOUT_RECORDS.is_dir():
        return CHECKOUT_RECORDS
    return resources.files("sslcourse") / "_records"


def load_record(name: str) -> dict:
    """Return the committed benchmark record ``name`` (e.g. ``"ch0_simclr_gpu.json"``) as a dict.

    Args:
        name: file name of the record in ``benchmarks/results/``, with its ``.json`` suffix.

    Raises:
        ValueError: ``name`` is not a bare ``.json`` file name.
        FileNotFoundError: no such record; the message says where it looked.
    """
    if Path(name).name != name or not name.endswith(".json"):
        raise ValueError(f"expected a record's file name such as 'ch0_simclr_gpu.json', got {name!r}")
    path = records_dir() / name
    if not path.is_file():
        raise FileNotFoundError(f"no record {name!r} in {records_dir()}: the benchmarks write their records to "
                                "benchmarks/results/, and an installed package holds those of the commit it was "
                                "installed from")
    return json.loads(path.read_text())
