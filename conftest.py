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
