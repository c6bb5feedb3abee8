r"""Imports a CSRA authors' PyTorch checkpoint into a csra-tf run folder.

Reads the `.pth` without torch and without running pickle code, checks every
tensor's name and shape, and writes `<workdir>/model.keras` (a CSRAClassifier
taking pixels in [0, 255], the authors' input scaling inside), `classes.json`
and `config.json`, so that csra-eval, csra-export and csra-predict work on the
folder. The input scaling follows the dataset, as in the authors' code: pixels /
255 for VOC and COCO (ResNets and ViTs alike), [-1, 1] for WIDER-Attribute
(`--class_names=wider` or `--dataset=wider`); `--pixel_normalization` overrides
it.

Example:
    csra-import --checkpoint=voc_resnet101_h1.pth --backbone=resnet101 \
        --num_classes=20 --num_heads=1 --lam=0.1 --image_size=448 \
        --class_names=voc2007 --workdir=runs/authors_voc
    csra-eval --workdir=runs/authors_voc --dataset=voc2007 --data_dir=~/tfds
    csra-import --checkpoint=wider_vit_b16.pth --backbone=vit_b16 \
        --num_classes=14 --num_heads=1 --lam=0.3 --image_size=224 \
        --class_names=wider --workdir=runs/authors_wider
"""

from __future__ import annotations

from absl import flags

from csra_tf.cli.app import no_arguments, quiet_tensorflow_logs, run_program
from csra_tf.config.choices import PIXEL_NORMALIZATIONS
from csra_tf.importer import import_to_workdir
from csra_tf.run_folder import read_config

PROGRAM = "csra-import"
FLAGS = flags.FLAGS
flags.DEFINE_string("checkpoint", None, "The authors' .pth file.", required=True)
flags.DEFINE_string(
    "backbone",
    None,
    "The backbone it holds: resnet101 (resnet18..152), vit_b16 or vit_l16.",
    required=True,
)
flags.DEFINE_integer("num_classes", None, "Number of classes C.", required=True)
flags.DEFINE_integer("num_heads", None, "Number of CSRA heads H.", required=True)
flags.DEFINE_float(
    "lam", None, "CSRA lambda the model was trained with.", required=True
)
flags.DEFINE_integer("image_size", None, "Input side, e.g. 448.", required=True)
flags.DEFINE_string("workdir", None, "Run folder to write.", required=True)
flags.DEFINE_string(
    "class_names",
    None,
    "voc2007, coco2014, wider (the authors' class orders) or a file (JSON list or "
    "one name per line); default class_0..class_C-1.",
)
flags.DEFINE_string(
    "dataset",
    None,
    "Evaluation dataset to record (default: the one --class_names names).",
)
flags.DEFINE_enum(
    "pixel_normalization",
    None,
    list(PIXEL_NORMALIZATIONS),
    "The model's input scaling (unit: pixels / 255; symmetric: [-1, 1]; "
    "imagenet: mean / std). Default: the authors' for the dataset: symmetric "
    "for wider, unit for voc2007, coco2014 and any other.",
)


def main(argv):
    """absl main: imports the checkpoint and prints what it wrote."""
    no_arguments(argv, PROGRAM)
    quiet_tensorflow_logs()
    model = import_to_workdir(
        FLAGS.checkpoint,
        FLAGS.workdir,
        backbone=FLAGS.backbone,
        num_classes=FLAGS.num_classes,
        num_heads=FLAGS.num_heads,
        lam=FLAGS.lam,
        image_size=FLAGS.image_size,
        class_names=FLAGS.class_names,
        dataset=FLAGS.dataset,
        pixel_normalization=FLAGS.pixel_normalization,
    )
    scaling = read_config(FLAGS.workdir).pixel_normalization
    print(
        f"Imported {FLAGS.checkpoint}: {FLAGS.backbone}, {model.head.num_heads} "
        f"head(s), {model.num_classes} classes, {model.count_params():,} parameters, "
        f"pixel_normalization={scaling} -> {FLAGS.workdir}/model.keras"
    )


def run():
    """Console-script entry point of `csra-import`."""
    run_program(main, PROGRAM, __name__)


if __name__ == "__main__":
    run()
