"""Packaging for csra-tf: class-specific residual attention for Keras 3."""

from setuptools import find_packages, setup

setup(
    name="csra-tf",
    version="0.2.0",
    description=(
        "Class-specific residual attention (CSRA, Zhu & Wu, ICCV 2021) for "
        "multi-label image recognition on Keras 3 / TensorFlow."
    ),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=find_packages(include=["csra_tf", "csra_tf.*"]),
    # The speed paths (csra_tf.acceleration) lean on a few private Keras names;
    # these are the ranges the test suite ran on. Widen them after it passes.
    install_requires=[
        "tensorflow>=2.21,<2.22",
        "keras>=3.15,<3.16",
        "keras-cv>=0.9,<0.10",
        "keras-hub>=0.32,<0.33",
        # keras-hub loads hf:// handles (timm's torchvision ResNet weights) with these.
        "huggingface-hub",
        "safetensors",
        "tensorflow-datasets",
        # tensorflow-datasets 4.9's download-and-prepare path (VOC, COCO) imports
        # importlib_resources, which it does not declare.
        "importlib-resources",
        "numpy",
        "absl-py",
        "tensorboard",
        "pillow",
        "matplotlib",
        "tqdm",
        "ai-edge-litert",
        # csra-export writes, and csra-predict reads, the TFLite metadata that
        # MediaPipe's ImageClassifier needs, with MediaPipe's own modules.
        "mediapipe>=1.2.3,<2",
    ],
    extras_require={
        "gpu": ["tensorflow[and-cuda]>=2.21,<2.22"],
        "test": ["pytest", "pytest-xdist", "scikit-learn", "ruff"],
        # The documentation site (mkdocs.yml): `mkdocs build --strict`.
        "docs": [
            "mkdocs>=1.6,<2",
            "mkdocs-material>=9.5,<10",
            "mkdocstrings[python]>=1.0,<2",
        ],
        # Only the side-by-side benchmark (experiments/benchmarks/vs_pytorch.py).
        "vs-pytorch": ["torch", "torchvision"],
    },
    entry_points={
        "console_scripts": [
            "csra-train=csra_tf.cli.csra_train:run",
            "csra-eval=csra_tf.cli.csra_eval:run",
            "csra-export=csra_tf.cli.csra_export:run",
            "csra-predict=csra_tf.cli.csra_predict:run",
            "csra-import=csra_tf.cli.csra_import:run",
            "csra-training-free=csra_tf.cli.csra_training_free:run",
            "csra-attention-report=csra_tf.cli.csra_attention_report:run",
            "csra-lambda-sweep=csra_tf.cli.study_programs:run_lambda_sweep",
            "csra-head-sweep=csra_tf.cli.study_programs:run_head_sweep",
            "csra-normalization-ablation=csra_tf.cli.study_programs:run_normalization",
            "csra-pooling-ablation=csra_tf.cli.study_programs:run_pooling",
            "csra-compare-heads=csra_tf.cli.study_programs:run_compare_heads",
        ],
    },
)
