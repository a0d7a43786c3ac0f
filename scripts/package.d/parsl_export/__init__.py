"""parsl-export: a Parsl monitoring database to CSV, Parquet, Chrome trace JSON and Prometheus metrics.

The work is done by the native binary shipped inside this package; `parsl-export` and `python -m parsl_export`
run it.
"""
import os

__version__ = "@VERSION@"


def binary_path():
    """The bundled `parsl-export` executable."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "bin", "parsl-export")
