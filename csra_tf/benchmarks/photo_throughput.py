"""Real-photo input pipeline at the paper's size: images per second per core.

Decode + random resized crop + flip + resize to 448 of real-size JPEG photos
(replicated to a few hundred records), through the training stream of
`csra_tf.data.build_dataset`, with tf.data limited to a given number of
threads. Measured twice: decoding only each crop's window (what training does)
and decoding every image whole, so the saving is visible. Divided by the
model's training throughput it tells how many cores the input pipeline of a
training job needs.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os
import time

import tensorflow as tf

from csra_tf.data import build_dataset, manifest
from csra_tf.errors import UserError


@dataclasses.dataclass(frozen=True)
class PhotoPipelineResult:
    """Throughput of the photo pipeline.

    Args:
        threads: tf.data threads used.
        crop_decode_images_per_s: images/s decoding only the crop windows.
        full_decode_images_per_s: images/s decoding every image whole.
        mean_megapixels: mean size of the photos.
    """

    threads: int
    crop_decode_images_per_s: float
    full_decode_images_per_s: float
    mean_megapixels: float

    @property
    def per_core(self) -> float:
        """Crop-decoding images/s per thread (core)."""
        return self.crop_decode_images_per_s / self.threads


def benchmark_photo_pipeline(
    photo_dir: str,
    work_dir: str,
    image_size: int = 448,
    batch_size: int = 16,
    threads: int = 1,
    replicate: int = 64,
    num_batches: int = 20,
) -> PhotoPipelineResult:
    """Times the training stream on replicated real photos.

    Args:
        photo_dir: folder of JPEG photos.
        work_dir: where the manifest of the replicated photos is written.
        image_size: model input side.
        batch_size: images per batch.
        threads: tf.data private thread-pool size (one per core).
        replicate: how many records each photo becomes.
        num_batches: batches timed after one warm-up batch.

    Returns:
        The `PhotoPipelineResult`.
    """
    photos = sorted(glob.glob(os.path.join(photo_dir, "*.jpg")))
    if not photos:
        raise UserError(f"No .jpg photos in the folder. Received: {photo_dir}")
    os.makedirs(work_dir, exist_ok=True)
    path = os.path.join(work_dir, "photos.jsonl")
    with open(path, "w", encoding="utf-8") as f:
        for copy in range(replicate):
            for index, photo in enumerate(photos):
                # One link per record: a manifest refuses the same file twice.
                link = os.path.join(work_dir, f"{copy:04d}_{os.path.basename(photo)}")
                if not os.path.lexists(link):
                    os.symlink(os.path.abspath(photo), link)
                record = {"image": link, "labels": [f"photo{(index + copy) % 2}"]}
                f.write(json.dumps(record) + "\n")
    source = manifest(path, progress=False)
    pixels = [
        int(h) * int(w)
        for h, w, _ in (
            tf.image.extract_jpeg_shape(tf.io.read_file(p)).numpy() for p in photos
        )
    ]
    options = tf.data.Options()
    options.threading.private_threadpool_size = threads
    options.threading.max_intra_op_parallelism = 1

    def rate(src) -> float:
        stream = build_dataset(
            src, image_size, batch_size, training=True, repeat=True
        ).with_options(options)
        iterator = iter(stream)
        next(iterator)  # warm-up
        start = time.perf_counter()
        for _ in range(num_batches):
            next(iterator)
        return num_batches * batch_size / (time.perf_counter() - start)

    crop = rate(source)
    full = rate(dataclasses.replace(source, encoded_fn=None))
    return PhotoPipelineResult(threads, crop, full, sum(pixels) / len(pixels) / 1e6)
