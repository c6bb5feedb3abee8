r"""Lambda sweep (paper Fig. 5): CSRA trained at each lambda, over seeds.

Takes every `csra-train` flag for the base config, plus `--lams` and `--seeds`.
Runs go to `<workdir>/lam_<lambda>/seed_<s>/` (finished runs are reused);
`results.csv` (mean ± std per lambda), `runs.csv` and `lambda.png` go to
`<workdir>`.

Example:
    python experiments/ablations/lambda_sweep.py --workdir=runs/lambda \
        --flagfile=experiments/configs/shapes_csra.flags \
        --lams=0,0.02,0.05,0.1,0.2,0.3,0.5,1 --seeds=0,1,2
"""

from csra_tf.cli.study_programs import run_lambda_sweep

if __name__ == "__main__":
    run_lambda_sweep()
