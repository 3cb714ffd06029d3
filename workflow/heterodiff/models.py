"""Denoisers written as diffusers models, so checkpoints save and load with save_pretrained/from_pretrained."""

from __future__ import annotations

import torch
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from torch import nn


class MLPDenoiser(ModelMixin, ConfigMixin):
    """An MLP that predicts the noise eps added to x_t, conditioned on the timestep t.

    The timestep enters through a sinusoidal embedding and a small MLP, and is added to the input
    projection. Hidden layers are residual blocks (SiLU, linear), so depth can grow without the signal
    vanishing at initialisation.
    """

    @register_to_config
    def __init__(self, dim: int = 8, width: int = 256, depth: int = 3, time_embedding_dim: int = 64):
        super().__init__()
        self.time_proj = Timesteps(time_embedding_dim, flip_sin_to_cos=True, downscale_freq_shift=0)
        self.time_embedding = TimestepEmbedding(time_embedding_dim, width)
        self.input = nn.Linear(dim, width)
        self.blocks = nn.ModuleList(nn.Sequential(nn.SiLU(), nn.Linear(width, width)) for _ in range(depth))
        self.output = nn.Sequential(nn.SiLU(), nn.Linear(width, dim))

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor | int) -> torch.Tensor:
        if not torch.is_tensor(timestep):
            timestep = torch.tensor([timestep], device=sample.device)
        timestep = timestep.to(sample.device).expand(sample.shape[0])
        embedding = self.time_embedding(self.time_proj(timestep).to(sample.dtype))
        hidden = self.input(sample) + embedding
        for block in self.blocks:
            hidden = hidden + block(hidden)
        return self.output(hidden)


def count_parameters(model: nn.Module) -> int:
    return sum(parameter.numel() for parameter in model.parameters())
