r"""Average vs spatial pooling (paper Table 6): GAP, attention only and CSRA.

Takes every `csra-train` flag for the base config (its `--num_heads` and
`--lam` are used by the attention heads), plus `--seeds`. Runs go to
`<workdir>/{average,spatial,csra}/seed_<s>/` (finished runs are reused);
`results.csv`, `runs.csv` and `pooling.png` go to `<workdir>`.

Example:
    python experiments/ablations/pooling.py --workdir=runs/pooling \
        --flagfile=experiments/configs/shapes_csra.flags --seeds=0,1,2
"""

from csra_tf.cli.study_programs import run_pooling

if __name__ == "__main__":
    run_pooling()
