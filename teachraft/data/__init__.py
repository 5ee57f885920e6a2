"""Data shipped with the package, so that a pip install and Binder have it."""
