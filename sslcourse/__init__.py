"""sslcourse: the library behind the course "Learning Representations".

Modules (each docstring says which chapter explains it):
data (datasets, device-resident loaders), augment (batched views), backbones, heads,
losses, methods, train (``fit``), schedules, evaluate, analysis, profiles, experiment.
"""

from .profiles import get_profile

__version__ = "0.1.0"
__all__ = ["__version__", "get_profile"]
