r"""Classifier normalisation (paper Table 8): CSRA with and without, over seeds.

Takes every `csra-train` flag for the base config, plus `--seeds`. Runs go to
`<workdir>/normalized/` and `<workdir>/unnormalized/` (finished runs are
reused); `results.csv`, `runs.csv` and `normalization.png` go to `<workdir>`.

Example:
    python experiments/ablations/normalization.py --workdir=runs/normalization \
        --flagfile=experiments/configs/shapes_csra.flags --seeds=0,1,2
"""

from csra_tf.cli.study_programs import run_normalization

if __name__ == "__main__":
    run_normalization()
