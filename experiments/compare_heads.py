r"""The embedded result: CSRA against GAP with the same budget over paired seeds.

Takes every `csra-train` flag for the shared config (CSRA uses its
`--num_heads` and `--lam`; GAP replaces the head only), plus `--seeds`
(default 0,1,2). Writes `comparison.csv` and `comparison.md` (per-seed mAP,
mean ± std, per-seed difference) and `runs.csv` into `<workdir>`; runs go to
`<workdir>/{gap,csra}/seed_<s>/` and finished ones are reused.

Example:
    python experiments/compare_heads.py --workdir=runs/compare \
        --flagfile=experiments/configs/shapes_csra.flags --seeds=0,1,2
"""

from csra_tf.cli.study_programs import run_compare_heads

if __name__ == "__main__":
    run_compare_heads()
