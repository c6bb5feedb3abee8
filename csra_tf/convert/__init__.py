"""Convert PyTorch checkpoints into csra-tf models.

The checkpoints this package reads are torchvision ResNets, timm ViTs and the
checkpoints the CSRA authors published. `load_state_dict` reads a `.pth` file
written by `torch.save` into numpy arrays without importing torch and without
running any code stored in the file; the per-architecture converters map those
arrays onto the weights of a csra-tf backbone, with a shape check per tensor.

Public API:
    load_state_dict          a `.pth` file -> {name: numpy array}, torch-free
    strip_module_prefix      drops the `module.` prefix of DataParallel checkpoints
    load_torchvision_resnet  torchvision ResNet tensors -> keras-hub ResNetBackbone
    torchvision_resnet_layout  stage depths and widths of a ResNet state dict
    load_timm_vit_weights    timm ViT tensors -> keras-hub ViTBackbone
    timm_vit_layout          depth, width and patch size of a ViT state dict
"""

from csra_tf.convert.pth import load_state_dict, strip_module_prefix
from csra_tf.convert.timm_vit import load_timm_vit_weights, timm_vit_layout
from csra_tf.convert.torchvision_resnet import (
    load_torchvision_resnet,
    torchvision_resnet_layout,
)

__all__ = [
    "load_state_dict",
    "load_timm_vit_weights",
    "load_torchvision_resnet",
    "strip_module_prefix",
    "timm_vit_layout",
    "torchvision_resnet_layout",
]
