"""Importing the authors' checkpoints: logits equal PyTorch's, clear refusals.

The fixtures are small models in the authors' layout made by PyTorch itself
(tests/convert/fixtures/make_{resnet,vit}_fixtures.py), with PyTorch's logits on
a few images; torch is not needed to run these tests.
"""

import io
import json
import os
import pickle
import zipfile

import keras
import numpy as np
import pytest

from csra_tf import run_folder
from csra_tf.importer import import_authors_checkpoint, import_to_workdir
from csra_tf.importer.authors_checkpoint import (
    authors_pixel_normalization,
    resolve_class_names,
    split_heads,
)
from csra_tf.models import CSRAClassifier
from tests.cli.test_errors import _assert_one_line_error, _run

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "convert", "fixtures")
CASES = {
    "resnet": ("resnet_tiny", "resnet_tiny_csra.pth", "resnet_expected.npz"),
    "vit": ("vit_tiny", "vit_tiny_csra.pth", "vit_expected.npz"),
}


def _expected(name):
    return np.load(os.path.join(FIXTURES, CASES[name][2]))


def _arguments(name):
    expected = _expected(name)
    return dict(
        backbone=CASES[name][0],
        num_classes=int(expected["num_classes"]),
        num_heads=len(expected["temperatures"]),
        lam=float(expected["lam"]),
        image_size=int(expected["image_size"]),
    )


# The fixtures' PyTorch inputs: pixels / 255 for the ResNet, pixels / 127.5 - 1
# for the ViT (as the authors' WIDER ViTs).
FIXTURE_SCALING = {"resnet": "unit", "vit": "symmetric"}


@pytest.mark.parametrize("name", sorted(CASES))
def test_imported_logits_equal_pytorch(tmp_path, name):
    expected = _expected(name)
    workdir = tmp_path / "run"
    checkpoint = os.path.join(FIXTURES, CASES[name][1])
    import_to_workdir(
        checkpoint,
        workdir,
        class_names=None,
        pixel_normalization=FIXTURE_SCALING[name],
        **_arguments(name),
    )
    model = keras.saving.load_model(workdir / "model.keras", safe_mode=True)
    assert isinstance(model, CSRAClassifier)
    assert model.head.temperatures == tuple(expected["temperatures"].tolist())
    logits = np.asarray(model.predict_on_batch(expected["images"].astype("float32")))
    np.testing.assert_allclose(logits, expected["csra_logits"], atol=1e-4, rtol=0)
    assert run_folder.read_class_names(workdir) == [
        f"class_{i}" for i in range(int(expected["num_classes"]))
    ]
    config = run_folder.read_config(workdir)
    assert (config.backbone, config.head, config.normalize) == (
        CASES[name][0],
        "csra",
        True,
    )
    assert config.pixel_normalization == FIXTURE_SCALING[name]


def test_authors_scaling_follows_the_dataset_not_the_backbone():
    """Their pipeline/dataset.py: [-1, 1] on WIDER only, pixels / 255 else."""
    assert authors_pixel_normalization("wider") == "symmetric"
    for dataset in ("voc2007", "coco2014", "shapes", None):
        assert authors_pixel_normalization(dataset) == "unit"


@pytest.mark.parametrize(
    "dataset, scaling, to_fixture_input",
    [
        # pixels / 255 of (2 p - 255) is the fixture's input p / 127.5 - 1.
        (None, "unit", lambda p: 2.0 * p - 255.0),
        ("coco2014", "unit", lambda p: 2.0 * p - 255.0),
        ("wider", "symmetric", lambda p: p),
    ],
    ids=["no_dataset", "coco2014", "wider"],
)
def test_vit_import_default_scaling_per_dataset(
    tmp_path, dataset, scaling, to_fixture_input
):
    """A ViT checkpoint gets pixels / 255 unless the run is WIDER's: the
    logits equal PyTorch's on the inputs that scaling maps to the fixture's."""
    expected = _expected("vit")
    workdir = tmp_path / "run"
    checkpoint = os.path.join(FIXTURES, CASES["vit"][1])
    model = import_to_workdir(checkpoint, workdir, dataset=dataset, **_arguments("vit"))
    assert run_folder.read_config(workdir).pixel_normalization == scaling
    pixels = to_fixture_input(expected["images"].astype("float32"))
    logits = np.asarray(model.predict_on_batch(pixels))
    np.testing.assert_allclose(logits, expected["csra_logits"], atol=1e-4, rtol=0)


def test_bad_pixel_normalization_is_refused(tmp_path):
    checkpoint = os.path.join(FIXTURES, CASES["vit"][1])
    with pytest.raises(ValueError, match="pixel_normalization=caffe"):
        import_to_workdir(
            checkpoint,
            tmp_path / "run",
            pixel_normalization="caffe",
            **_arguments("vit"),
        )
    assert not (tmp_path / "run").exists()


def test_dataparallel_prefix_is_accepted():
    expected = _expected("resnet")
    model = import_authors_checkpoint(
        os.path.join(FIXTURES, "resnet_tiny_csra_dataparallel.pth"),
        **_arguments("resnet"),
    )
    logits = np.asarray(model.predict_on_batch(expected["images"].astype("float32")))
    np.testing.assert_allclose(logits, expected["csra_logits"], atol=1e-4, rtol=0)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"num_heads": 1}, "has 2 CSRA heads but --num_heads=1"),
        ({"num_classes": 7}, "(7, 64, 1, 1)"),
        ({"backbone": "vit_tiny"}, "not the vit"),
        ({"backbone": "resnet50"}, "another architecture"),
        ({"backbone": "tiny"}, "--backbone must be one of"),
    ],
)
def test_mismatches_are_refused_by_name(changes, message):
    arguments = {**_arguments("resnet"), **changes}
    with pytest.raises(
        ValueError, match=message.replace("(", r"\(").replace(")", r"\)")
    ):
        import_authors_checkpoint(
            os.path.join(FIXTURES, "resnet_tiny_csra.pth"), **arguments
        )


def test_heads_with_bias_and_gaps_are_refused():
    kernel = np.zeros((3, 8, 1, 1), np.float32)
    with pytest.raises(ValueError, match="bias"):
        split_heads(
            {
                "classifier.multi_head.0.head.weight": kernel,
                "classifier.multi_head.0.head.bias": np.zeros(3, np.float32),
            }
        )
    with pytest.raises(ValueError, match="numbered 0..H-1"):
        split_heads({"classifier.multi_head.1.head.weight": kernel})
    with pytest.raises(ValueError, match="no CSRA heads"):
        split_heads({"conv1.weight": kernel})
    with pytest.raises(ValueError, match=r"\(C, d, 1, 1\)"):
        split_heads({"classifier.multi_head.0.head.weight": kernel[..., 0]})


def test_class_names(tmp_path):
    assert resolve_class_names("voc2007", 20)[:3] == ["aeroplane", "bicycle", "bird"]
    assert resolve_class_names("coco2014", 80)[-1] == "toothbrush"
    assert resolve_class_names("wider", 14)[0] == "Male"
    lines = tmp_path / "names.txt"
    lines.write_text("cat\ndog\n")
    assert resolve_class_names(str(lines), 2) == ["cat", "dog"]
    with pytest.raises(ValueError, match="20 class names for --num_classes=5"):
        resolve_class_names("voc2007", 5)


def _malicious_pth(path, marker):
    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({"w": Payload()}))
    path.write_bytes(buffer.getvalue())


@pytest.mark.slow
def test_csra_import_program_end_to_end(tmp_path):
    expected = _expected("resnet")
    workdir = tmp_path / "run"
    arguments = _arguments("resnet")
    flags = [
        f"--backbone={arguments['backbone']}",
        f"--num_classes={arguments['num_classes']}",
        f"--num_heads={arguments['num_heads']}",
        f"--lam={arguments['lam']}",
        f"--image_size={arguments['image_size']}",
    ]
    result = _run(
        "csra-import",
        "csra_tf.cli.csra_import",
        f"--checkpoint={os.path.join(FIXTURES, 'resnet_tiny_csra.pth')}",
        f"--workdir={workdir}",
        *flags,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Imported" in result.stdout
    assert "pixel_normalization=unit" in result.stdout

    # csra-eval on the imported folder, pointed at a labelled manifest.
    from PIL import Image

    records = []
    for i, image in enumerate(expected["images"]):
        Image.fromarray(image).save(tmp_path / f"{i}.png")
        records.append({"image": f"{i}.png", "labels": [f"class_{i % 5}"]})
    manifest = tmp_path / "val.jsonl"
    manifest.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    result = _run(
        "csra-eval",
        "csra_tf.cli.csra_eval",
        f"--workdir={workdir}",
        f"--dataset={manifest}",
        f"--val_dataset={manifest}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "mAP" in result.stdout
    assert (workdir / "metrics.json").exists()

    # The same program refuses a pickle that would run code, and runs nothing.
    marker = tmp_path / "pwned"
    bad = tmp_path / "bad.pth"
    _malicious_pth(bad, marker)
    result = _run(
        "csra-import",
        "csra_tf.cli.csra_import",
        f"--checkpoint={bad}",
        f"--workdir={tmp_path / 'bad_run'}",
        *flags,
    )
    _assert_one_line_error(result, "csra-import", "system")
    assert not marker.exists()
    assert not (tmp_path / "bad_run" / "model.keras").exists()
