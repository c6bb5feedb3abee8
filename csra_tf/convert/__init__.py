"""Convert PyTorch checkpoints into csra-tf models.

The checkpoints this package reads are torchvision ResNets, timm ViTs and the
checkpoints the CSRA authors published. `load_state_dict` reads a `.pth` file
written by `torch.save` into numpy arrays without importing torch and without
running any code stored in the file; the per-architecture importers map those
arrays onto the weights of a csra-tf model.
"""

from csra_tf.convert.pth import load_state_dict

__all__ = ["load_state_dict"]
