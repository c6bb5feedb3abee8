"""Importing the CSRA authors' released checkpoints (`csra-import`).

Public API:
    import_to_workdir          checkpoint -> run folder (model.keras, classes.json,
                               config.json) for csra-eval, csra-export, csra-predict
    import_authors_checkpoint  checkpoint -> `CSRAClassifier`
"""

from csra_tf.importer.authors_checkpoint import (
    import_authors_checkpoint,
    import_to_workdir,
)

__all__ = ["import_authors_checkpoint", "import_to_workdir"]
