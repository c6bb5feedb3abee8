"""The attention report of a trained run: overlays and the pointing game.

`attention_report` draws per-class attention overlays of the first validation
images into `<workdir>/attention/` and scores the pointing game over the whole
validation split (`<workdir>/pointing_game.json`), as
`csra-attention-report` does.
"""

from __future__ import annotations

import os

from csra_tf import run_folder
from csra_tf.config import TrainConfig
from csra_tf.data import load_boxes, shapes_dir
from csra_tf.errors import UserError
from csra_tf.inference.attention import attention_maps, write_overlays
from csra_tf.metrics.pointing_game import class_index, count_hits, summarize_hits


def _validation_boxes(config: TrainConfig) -> list[list[dict]]:
    if config.dataset == "shapes":
        return load_boxes(
            shapes_dir(
                run_folder.data_dir(config),
                "val",
                image_size=config.shapes_image_size,
                num_train=config.num_train,
                num_val=config.num_val,
                seed=config.seed,
                progress=False,
            )
        )
    if config.val_dataset:
        return load_boxes(config.val_dataset)
    raise UserError(
        "The pointing game needs boxes: the embedded shapes data or a JSON-lines "
        f"validation manifest with `boxes`. Received: dataset={config.dataset}"
    )


def attention_report(
    workdir: str,
    num_images: int = 8,
    batch_size: int = 64,
    tolerance: float | None = None,
) -> dict:
    """Overlays and the pointing game of a trained run on its validation split.

    Reads `workdir/config.json` and `workdir/model.keras`; writes per-class
    overlays of the present classes of the first `num_images` validation images
    into `workdir/attention/`, and the pointing game over the whole split into
    `workdir/pointing_game.json`.

    Args:
        workdir: a finished training run's folder.
        num_images: validation images to draw.
        batch_size: images per forward pass.
        tolerance: see `pointing_game` (None: half a cell).

    Returns:
        The `pointing_game_report` dict, plus `num_images` and `overlays` (the
        written PNG paths).
    """
    run = run_folder.load_run(workdir)
    config, model, val_source = run.config, run.model, run.val_source
    class_names = list(val_source.class_names)
    boxes = _validation_boxes(config)
    if val_source.num_examples is not None and len(boxes) != val_source.num_examples:
        raise UserError(
            "The validation boxes do not line up with its images (were bad records "
            f"skipped?). Received: {len(boxes)} box lists, "
            f"{val_source.num_examples} images"
        )
    index = class_index(class_names)
    counts = None
    start = 0
    for images, _ in run.val_batches(batch_size):
        maps = attention_maps(model, images.numpy(), batch_size=batch_size)
        batch = count_hits(maps, boxes[start : start + len(maps)], index, tolerance)
        counts = batch if counts is None else {k: counts[k] + batch[k] for k in counts}
        start += len(maps)
    if counts is None:
        raise UserError(f"The validation split is empty. Received: workdir={workdir}")
    report = summarize_hits(counts, class_names)
    report["num_images"] = start

    originals = [
        image.numpy() for image, _ in val_source.dataset.take(max(num_images, 0))
    ]
    present = [sorted({b["label"] for b in boxes[i]}) for i in range(len(originals))]
    report["overlays"] = (
        write_overlays(
            model,
            originals,
            class_names,
            os.path.join(workdir, run_folder.ATTENTION_DIR),
            classes_per_image=present,
        )
        if originals
        else []
    )
    run_folder.write_json(
        os.path.join(workdir, run_folder.POINTING_GAME_FILE),
        {k: v for k, v in report.items() if k != "overlays"},
    )
    return report
