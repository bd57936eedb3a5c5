"""Root pytest configuration, shared by the unit tests and the notebooks run by nbval.

pytest runs two workers (-n 2) on a 2-core machine. Each notebook kernel is a separate
process; if every process also used every core for PyTorch/OpenMP threads, the workers
would oversubscribe the CPU and run many times slower (measured: a notebook that takes 2
minutes alone took over 10 minutes beside another). One thread per process avoids that.
The kernels inherit these variables from the worker that starts them.
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("SSLCOURSE_PROFILE", "ci")
# A notebook kernel given MPLBACKEND=Agg draws its figures nowhere: plt.show() leaves no
# image output, and the book built from the executed notebooks would have none. Without the
# variable the kernel uses its inline backend, and headless test processes fall back to Agg.
os.environ.pop("MPLBACKEND", None)


# With SSLCOURSE_EXECUTED_NOTEBOOKS=DIR, every notebook nbval runs is also written to DIR
# with the outputs the kernel produced, so CI can build the book from them instead of
# executing every chapter a second time (tools/build_book.py --executed DIR).
_EXECUTED_DIR = os.environ.get("SSLCOURSE_EXECUTED_NOTEBOOKS")
_executed: dict[str, object] = {}


def pytest_runtest_teardown(item):
    outputs = getattr(item, "test_outputs", None)
    if _EXECUTED_DIR and outputs is not None:
        item.cell.outputs = outputs
        item.cell.execution_count = item.cell_num + 1
        _executed[str(item.parent.fspath)] = item.parent.nb


def pytest_sessionfinish(session):
    if not _EXECUTED_DIR:
        return
    from pathlib import Path

    import nbformat

    out = Path(_EXECUTED_DIR)
    out.mkdir(parents=True, exist_ok=True)
    for path, notebook in _executed.items():
        nbformat.write(notebook, out / Path(path).name)
