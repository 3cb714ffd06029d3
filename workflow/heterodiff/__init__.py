"""heterodiff: reproducible ablation studies of memorisation and generalisation in diffusion models."""

from importlib import metadata

try:
    __version__ = metadata.version("heterodiff")
except metadata.PackageNotFoundError:  # imported from a checkout without `pip install`
    __version__ = "0.1.0"
