"""DrQ-style random-shift augmentation for stable-baselines3's off-policy methods on image observations.

DrQ (Kostrikov et al. 2020) and DrQ-v2 (Yarats et al. 2021) pad each image by a few pixels (replicating
the border) and crop it back at a random offset, independently for every sampled observation and
next observation, so the critic, its target and the actor all learn from shifted images. SB3's hook
for changing what a gradient step sees is the replay buffer class (`replay_buffer_class`): the
features extractor alone cannot do it, since SB3 keeps the target critic's extractor in eval mode and
acting would be shifted too. Acting and evaluation see the images unchanged.
"""
from __future__ import annotations

import torch
from stable_baselines3.common.buffers import DictReplayBuffer
from stable_baselines3.common.preprocessing import is_image_space, is_image_space_channels_first
from stable_baselines3.common.type_aliases import DictReplayBufferSamples

from mbrl_ros.data.augment import shift_images


def random_shift(images: torch.Tensor, pad: int, channels_first: bool = True,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Each image of the batch shifted by its own integer offset in [-pad, pad] per axis (border
    replicated; data/augment.shift_images, the world model's shift), same shape, dtype and device."""
    if pad <= 0:
        return images
    n = images.shape[0]
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator) - pad
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator) - pad
    hwc = images.permute(0, 2, 3, 1) if channels_first else images
    out = torch.from_numpy(shift_images(hwc.cpu().numpy(), dy.numpy(), dx.numpy())).to(images.device)
    return out.permute(0, 3, 1, 2) if channels_first else out


class RandomShiftReplayBuffer(DictReplayBuffer):
    """A DictReplayBuffer whose sampled image observations (and next observations) are randomly shifted."""

    def __init__(self, *args, pad: int = 4, **kwargs):
        super().__init__(*args, **kwargs)
        self.pad = int(pad)
        self.image_keys = {key: is_image_space_channels_first(space)
                           for key, space in self.observation_space.spaces.items()
                           if is_image_space(space, check_channels=False)}
        if not self.image_keys:
            raise ValueError("random_shift_pad needs an image observation (policy_obs: dict on a camera task)")

    def _shift(self, obs: dict) -> dict:
        return {k: random_shift(v, self.pad, self.image_keys[k]) if k in self.image_keys else v
                for k, v in obs.items()}

    def _get_samples(self, batch_inds, env=None) -> DictReplayBufferSamples:
        samples = super()._get_samples(batch_inds, env)
        return samples._replace(observations=self._shift(samples.observations),
                                next_observations=self._shift(samples.next_observations))
