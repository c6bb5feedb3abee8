"""The export fixtures (tests/exported_model.py) for this folder's tests."""

from tests.exported_model import classes_dir, exported, model, sources

__all__ = ["classes_dir", "exported", "model", "sources"]
