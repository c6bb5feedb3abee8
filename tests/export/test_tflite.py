"""TFLite variants: builtin ops only, numerics against Keras, quantised I/O."""

import numpy as np
import pytest
import tensorflow as tf

from csra_tf.export import (
    check_builtin_ops,
    convert_saved_model,
    export_saved_model,
)
from csra_tf.export.tflite import VARIANTS, list_ops
from csra_tf.inference import TFLiteModel
from csra_tf.models import build_classifier
from tests.exported_model import CLASS_NAMES, IMAGE_SIZE, labelled_images, probabilities

# Max |delta probability| against Keras, per variant, on images like those the
# int8 variants were calibrated on. (On uniform noise, outside that distribution,
# the full-integer model's activations clip: its error there ranged 0.003-0.14
# over fixture models trained from different seeds.)
TOLERANCES = {"float32": 1e-4, "float16": 5e-3, "dynamic_int8": 0.1, "int8": 0.1}


@pytest.mark.parametrize("variant", VARIANTS)
def test_variant_is_builtin_only_and_matches_keras(exported, model, variant):
    export_dir, _ = exported
    content = (export_dir / f"model_{variant}.tflite").read_bytes()
    ops = check_builtin_ops(content)
    assert not any(op.startswith("Flex") for op in ops)
    tflite = TFLiteModel(content)
    assert tflite.output_names == ["logits"]  # one score tensor, as MediaPipe needs
    images, _ = labelled_images(np.random.default_rng(3), 8)
    outputs = tflite(images)
    assert outputs["probabilities"].shape == (8, len(CLASS_NAMES))
    assert outputs["probabilities"].dtype == np.float32
    np.testing.assert_allclose(
        outputs["probabilities"], 1 / (1 + np.exp(-outputs["logits"].astype(float)))
    )
    delta = np.abs(outputs["probabilities"] - probabilities(model, images)).max()
    assert delta <= TOLERANCES[variant]
    # Dynamic batch: a single image gives the same result as in the batch.
    np.testing.assert_allclose(
        tflite(images[1:2])["probabilities"], outputs["probabilities"][1:2], atol=1e-6
    )


def test_float_variants_take_float_pixels(exported):
    export_dir, _ = exported
    for variant in ("float32", "float16", "dynamic_int8"):
        tflite = TFLiteModel(export_dir / f"model_{variant}.tflite")
        assert tflite.input_dtype == np.float32
        assert tflite.input_quantization is None


def test_int8_takes_raw_uint8_pixels_and_gives_uint8_logits(exported):
    export_dir, _ = exported
    path = str(export_dir / "model_int8.tflite")
    tflite = TFLiteModel(path)
    assert tflite.input_dtype == np.uint8
    assert tflite.input_quantization == (1.0, 0)  # a phone feeds camera bytes

    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path)
    runner = interpreter.get_signature_runner("serving_default")
    outputs = runner.get_output_details()
    # MediaPipe reads uint8 or float32 scores; int8 it refuses.
    assert {d["dtype"] for d in outputs.values()} == {np.uint8}
    ops = list_ops((export_dir / "model_int8.tflite").read_bytes())
    assert "DEQUANTIZE" not in ops  # every tensor stays integer
    pixels = np.random.default_rng(4).integers(0, 256, (2, IMAGE_SIZE, IMAGE_SIZE, 3))
    raw = runner(images=pixels.astype(np.uint8))
    scale, zero_point = outputs["logits"]["quantization"]
    expected = (raw["logits"].astype(np.float32) - zero_point) * scale
    # TFLiteModel quantises float pixels and dequantises outputs the same way.
    np.testing.assert_array_equal(tflite(pixels.astype(np.float32))["logits"], expected)


def test_check_builtin_ops_rejects_select_tf_ops():
    @tf.function(input_signature=[tf.TensorSpec([None, 3, 3], tf.float32)])
    def needs_flex(x):
        return tf.linalg.det(x)  # no builtin TFLite op: MatrixDeterminant

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [needs_flex.get_concrete_function()], needs_flex
    )
    converter.target_spec.supported_ops = [
        tf.lite.OpsSet.TFLITE_BUILTINS,
        tf.lite.OpsSet.SELECT_TF_OPS,
    ]
    content = converter.convert()
    assert list_ops(content) == ["FlexMatrixDeterminant"]
    with pytest.raises(ValueError, match=r"select-TF \(Flex\) ops"):
        check_builtin_ops(content)


def test_converter_arguments_are_checked(exported):
    export_dir, _ = exported
    saved_model = export_dir / "saved_model"
    with pytest.raises(ValueError, match="Received: variant=int4"):
        convert_saved_model(saved_model, "int4")
    with pytest.raises(ValueError, match="`representative_images` is required"):
        convert_saved_model(saved_model, "int8")
    with pytest.raises(ValueError, match="only for it"):
        convert_saved_model(saved_model, "float16", lambda: [])


def test_tflite_model_checks_image_shape(exported):
    export_dir, _ = exported
    tflite = TFLiteModel(export_dir / "model_float32.tflite")
    with pytest.raises(ValueError, match="Received: shape=\\(1, 16, 16, 3\\)"):
        tflite(np.zeros((1, 16, 16, 3)))
    with pytest.raises(ValueError, match="num_threads=0"):
        TFLiteModel(export_dir / "model_float32.tflite", num_threads=0)


@pytest.mark.slow
def test_multi_head_csra_with_max_pooling_converts(tmp_path):
    model = build_classifier("tiny", num_classes=3, num_heads=4, image_size=IMAGE_SIZE)
    saved_model = export_saved_model(model, tmp_path / "saved_model")
    images = np.random.default_rng(6).uniform(0, 255, (4, IMAGE_SIZE, IMAGE_SIZE, 3))
    reference = probabilities(model, images)
    for variant, tolerance in (("float32", 1e-4), ("int8", 0.05)):
        content = convert_saved_model(
            saved_model, variant, (lambda: [images]) if variant == "int8" else None
        )
        outputs = TFLiteModel(content)(images)
        assert np.abs(outputs["probabilities"] - reference).max() <= tolerance
