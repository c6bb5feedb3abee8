"""torchvision ResNet state dicts onto keras-hub `ResNetBackbone`s.

torchvision's ResNet (V1.5: the stride sits on the 3x3 convolution of a
bottleneck, BatchNorm epsilon 1e-5) is keras-hub's `ResNetBackbone` with
`use_pre_activation=False`, a one-convolution 7x7 stem and `"basic_block"` or
`"bottleneck_block"` blocks. Each torchvision tensor has one keras-hub variable:

| torchvision                                 | keras-hub layer           |
|---------------------------------------------|---------------------------|
| `conv1.weight`                              | `conv1_conv`              |
| `bn1.*`                                     | `conv1_bn`                |
| `layer{s+1}.{b}.conv{k}.weight`             | `stack{s}_block{b}_{k}_conv` |
| `layer{s+1}.{b}.bn{k}.*`                    | `stack{s}_block{b}_{k}_bn` |
| `layer{s+1}.{b}.downsample.0.weight`        | `stack{s}_block{b}_0_conv` |
| `layer{s+1}.{b}.downsample.1.*`             | `stack{s}_block{b}_0_bn`  |

BatchNorm `weight`, `bias`, `running_mean`, `running_var` are gamma, beta,
moving mean and moving variance; convolution kernels go from torch's OIHW to
Keras's HWIO. `num_batches_tracked` and the classifier `fc.*` are ignored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import numpy as np

from csra_tf.convert.pth import strip_module_prefix
from csra_tf.errors import UserError

_BATCH_NORM_FIELDS = (
    ("weight", "gamma"),
    ("bias", "beta"),
    ("running_mean", "moving_mean"),
    ("running_var", "moving_variance"),
)
_IGNORED_SUFFIX = "num_batches_tracked"
_BLOCK_KEY = re.compile(r"^layer(\d+)\.(\d+)\.")
_BLOCK_TYPES = ("basic_block", "bottleneck_block")
_MAX_LISTED = 20


def torchvision_resnet_layout(state_dict: Mapping[str, np.ndarray]) -> dict:
    """Infers the architecture of a torchvision ResNet from its state dict.

    Args:
        state_dict: tensor name -> array, torchvision's names (`conv1.weight`,
            `layer1.0.conv1.weight`, ...; DataParallel's `module.` prefix is
            accepted).

    Returns:
        A dict of `keras_hub.models.ResNetBackbone` arguments:
        `input_conv_filters` (`[stem width]`), `stackwise_num_blocks`,
        `stackwise_num_filters` (each stage's first convolution width, None
        where the tensor is absent) and `block_type`.

    Example:
    >>> import numpy as np
    >>> layout = torchvision_resnet_layout({
    ...     "conv1.weight": np.zeros((64, 3, 7, 7)),
    ...     "layer1.0.conv1.weight": np.zeros((64, 64, 3, 3)),
    ...     "layer1.1.conv1.weight": np.zeros((64, 64, 3, 3)),
    ... })
    >>> layout["stackwise_num_blocks"], layout["block_type"]
    ([2], 'basic_block')
    """
    state_dict = strip_module_prefix(state_dict)
    blocks: dict[int, int] = {}
    for key in state_dict:
        match = _BLOCK_KEY.match(key)
        if match:
            stage, block = int(match.group(1)), int(match.group(2))
            blocks[stage] = max(blocks.get(stage, 0), block + 1)
    stages = sorted(blocks)
    if not stages or stages != list(range(1, len(stages) + 1)):
        raise UserError(
            "This is not a torchvision ResNet state dict: it needs `layer1.*`, "
            "`layer2.*`, ... tensors. Received: state_dict keys="
            f"{_listed(sorted(state_dict))}"
        )
    bottleneck = any(".conv3." in key for key in state_dict)
    stem = state_dict.get("conv1.weight")
    return dict(
        input_conv_filters=[None if stem is None else int(np.shape(stem)[0])],
        stackwise_num_blocks=[blocks[s] for s in stages],
        stackwise_num_filters=[_stage_width(state_dict, s) for s in stages],
        block_type="bottleneck_block" if bottleneck else "basic_block",
    )


def load_torchvision_resnet(
    backbone,
    state_dict: Mapping[str, np.ndarray],
    ignore_prefixes: Iterable[str] = ("fc.",),
) -> None:
    """Assigns a torchvision ResNet state dict to a keras-hub `ResNetBackbone`.

    Every tensor is checked before any is assigned: the architecture (blocks
    per stage, block type, widths), then names and shapes.

    Args:
        backbone: a `keras_hub.models.ResNetBackbone` in torchvision's layout
            (`use_pre_activation=False`, one stem convolution, `"basic_block"`
            or `"bottleneck_block"`).
        state_dict: tensor name -> array, e.g. from
            `csra_tf.convert.load_state_dict` (DataParallel's `module.` prefix
            is accepted).
        ignore_prefixes: names starting with these are skipped (the ImageNet
            classifier `fc.` by default; add `"classifier."` for the CSRA
            authors' checkpoints).

    Returns:
        None; the backbone's variables hold the checkpoint's values.

    Raises:
        ValueError: the backbone is not in torchvision's layout, the
            checkpoint is of another architecture, or tensors are missing,
            unexpected or of the wrong shape (all are listed).
    """
    _check_backbone(backbone)
    ignore_prefixes = tuple(ignore_prefixes)
    tensors = {
        key: value
        for key, value in strip_module_prefix(state_dict).items()
        if not key.endswith(_IGNORED_SUFFIX) and not key.startswith(ignore_prefixes)
    }
    _check_architecture(backbone, tensors)
    table = _variable_table(backbone)
    missing = [key for key in table if key not in tensors]
    unexpected = [key for key in tensors if key not in table]
    wrong_shapes = []
    for key, (variable, is_kernel) in table.items():
        if key in tensors:
            expected = _torch_shape(variable.shape, is_kernel)
            if tuple(np.shape(tensors[key])) != expected:
                wrong_shapes.append(
                    f"{key}: checkpoint {tuple(np.shape(tensors[key]))} vs "
                    f"backbone {expected}"
                )
    if missing or unexpected or wrong_shapes:
        problems = []
        if missing:
            problems.append(f"missing keys {_listed(missing)}")
        if unexpected:
            problems.append(f"unexpected keys {_listed(unexpected)}")
        if wrong_shapes:
            problems.append(f"wrong shapes {_listed(wrong_shapes)}")
        raise UserError(
            "The state dict does not fit the backbone: "
            + "; ".join(problems)
            + f". Received: state_dict with {len(state_dict)} tensors"
        )
    for key, (variable, is_kernel) in table.items():
        value = np.asarray(tensors[key])
        if is_kernel:
            value = np.transpose(value, (2, 3, 1, 0))
        variable.assign(value.astype(variable.dtype))


def _stage_width(state_dict, stage):
    first = state_dict.get(f"layer{stage}.0.conv1.weight")
    return None if first is None else int(np.shape(first)[0])


def _check_backbone(backbone):
    block_type = getattr(backbone, "block_type", None)
    if (
        block_type not in _BLOCK_TYPES
        or getattr(backbone, "use_pre_activation", True)
        or len(getattr(backbone, "input_conv_filters", ())) != 1
    ):
        raise UserError(
            "torchvision ResNets load into a keras-hub ResNetBackbone with "
            f"block_type in {_BLOCK_TYPES}, use_pre_activation=False and one stem "
            f"convolution. Received: backbone={getattr(backbone, 'name', backbone)}"
        )


def _check_architecture(backbone, tensors):
    layout = torchvision_resnet_layout(tensors)
    ours = dict(
        input_conv_filters=list(backbone.input_conv_filters),
        stackwise_num_blocks=list(backbone.stackwise_num_blocks),
        stackwise_num_filters=list(backbone.stackwise_num_filters),
        block_type=backbone.block_type,
    )
    differences = []
    for name, theirs in layout.items():
        mine = ours[name]
        if isinstance(theirs, list):
            comparable = len(theirs) == len(mine) and all(
                t is None or t == m for t, m in zip(theirs, mine, strict=True)
            )
        else:
            comparable = theirs == mine
        if not comparable:
            differences.append(f"{name}: checkpoint {theirs} vs backbone {mine}")
    if differences:
        raise UserError(
            "This is a checkpoint of another architecture than the backbone's ("
            + "; ".join(differences)
            + f"). Received: state_dict with {len(tensors)} backbone tensors"
        )


def _variable_table(backbone) -> dict:
    """torchvision name -> (keras variable, is a convolution kernel)."""
    table = {}

    def conv(torch_name, layer_name):
        table[f"{torch_name}.weight"] = (backbone.get_layer(layer_name).kernel, True)

    def batch_norm(torch_name, layer_name):
        layer = backbone.get_layer(layer_name)
        for torch_field, keras_field in _BATCH_NORM_FIELDS:
            table[f"{torch_name}.{torch_field}"] = (getattr(layer, keras_field), False)

    conv("conv1", "conv1_conv")
    batch_norm("bn1", "conv1_bn")
    num_convs = 3 if backbone.block_type == "bottleneck_block" else 2
    for stage, num_blocks in enumerate(backbone.stackwise_num_blocks):
        for block in range(num_blocks):
            ours = f"stack{stage}_block{block}"
            theirs = f"layer{stage + 1}.{block}"
            if block == 0 and _has_layer(backbone, f"{ours}_0_conv"):
                conv(f"{theirs}.downsample.0", f"{ours}_0_conv")
                batch_norm(f"{theirs}.downsample.1", f"{ours}_0_bn")
            for k in range(1, num_convs + 1):
                conv(f"{theirs}.conv{k}", f"{ours}_{k}_conv")
                batch_norm(f"{theirs}.bn{k}", f"{ours}_{k}_bn")
    return table


def _has_layer(model, name):
    return any(layer.name == name for layer in model.layers)


def _torch_shape(keras_shape, is_kernel):
    shape = tuple(int(s) for s in keras_shape)
    return (shape[3], shape[2], shape[0], shape[1]) if is_kernel else shape


def _listed(items):
    items = list(items)
    if len(items) <= _MAX_LISTED:
        return items
    return items[:_MAX_LISTED] + [f"... {len(items) - _MAX_LISTED} more"]
