"""The image denoiser: a diffusers UNet2DModel behind the flat-row interface of the mixture denoiser."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers import ConfigMixin, ModelMixin, UNet2DModel
from diffusers.configuration_utils import register_to_config

from heterodiff.image_config import downsampling_factor, padded_size, size_problem


class UNetDenoiser(ModelMixin, ConfigMixin):
    """A UNet2DModel that predicts the noise eps added to x_t, for images passed as flat rows.

    Rows of channels * height * width values are reshaped to images, zero-padded at the bottom and right
    to a size the down-sampling divides (when `pad` is set), and the prediction is cropped back and
    flattened. The training loop, the samplers and the memorisation metrics therefore treat images and
    mixture points alike.
    """

    @register_to_config
    def __init__(
        self,
        channels: int = 1,
        height: int = 8,
        width: int = 8,
        block_channels: tuple[int, ...] = (32, 64),
        layers_per_block: int = 1,
        attention: bool = False,
        norm_num_groups: int = 8,
        pad: bool = False,
    ):
        super().__init__()
        factor = downsampling_factor(list(block_channels))
        problem = size_problem(height, width, {"block_channels": list(block_channels), "pad": pad})
        if problem is not None:
            raise ValueError(problem)
        self.padded = (padded_size(height, factor), padded_size(width, factor)) if pad else (height, width)

        # Attention, when on, sits in every block below the full resolution, as in the DDPM U-Net.
        levels = len(block_channels)
        down = ["DownBlock2D"] + ["AttnDownBlock2D" if attention else "DownBlock2D"] * (levels - 1)
        up = ["AttnUpBlock2D" if attention else "UpBlock2D"] * (levels - 1) + ["UpBlock2D"]
        self.unet = UNet2DModel(
            sample_size=self.padded,
            in_channels=channels,
            out_channels=channels,
            block_out_channels=tuple(block_channels),
            layers_per_block=layers_per_block,
            down_block_types=tuple(down),
            up_block_types=tuple(up),
            norm_num_groups=norm_num_groups,
        )

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor | int) -> torch.Tensor:
        channels, height, width = self.config.channels, self.config.height, self.config.width
        images = sample.reshape(len(sample), channels, height, width)
        if self.padded != (height, width):
            images = F.pad(images, (0, self.padded[1] - width, 0, self.padded[0] - height))
        if not torch.is_tensor(timestep):
            timestep = torch.tensor([timestep], device=sample.device)
        timestep = timestep.to(sample.device).expand(len(sample))
        epsilon = self.unet(images, timestep).sample[:, :, :height, :width]
        return epsilon.reshape(len(sample), -1)


def make_unet(unet: dict, image_shape) -> UNetDenoiser:
    channels, height, width = (int(size) for size in image_shape)
    return UNetDenoiser(
        channels=channels,
        height=height,
        width=width,
        block_channels=tuple(unet["block_channels"]),
        layers_per_block=unet["layers_per_block"],
        attention=unet["attention"],
        norm_num_groups=unet["norm_num_groups"],
        pad=unet["pad"],
    )
