r"""Number of heads (paper Table 7): CSRA with H = 1, 2, 4, 6, 8, over seeds.

Takes every `csra-train` flag for the base config (its `--lam` is kept), plus
`--head_counts` and `--seeds`. Runs go to `<workdir>/heads_<H>/seed_<s>/`
(finished runs are reused); `results.csv`, `runs.csv` and `heads.png` go to
`<workdir>`.

Example:
    python experiments/ablations/heads.py --workdir=runs/heads \
        --flagfile=experiments/configs/shapes_csra.flags --lam=0.5 \
        --head_counts=1,2,4,6,8 --seeds=0,1,2
"""

from csra_tf.cli.study_programs import run_head_sweep

if __name__ == "__main__":
    run_head_sweep()
