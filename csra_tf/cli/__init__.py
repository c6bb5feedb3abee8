"""absl entry points of the console scripts (`csra-train`, `csra-eval`).

They live in the package (not in the top-level `experiments/` folder) so that an
installed `csra-tf` really contains the modules its console scripts point at;
`experiments/*.py` are thin wrappers around them.
"""
