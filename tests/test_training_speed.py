"""The training speed-ups change layouts and the allocator, never the maths (docs/world_model.md,
"Training speed"): same weights + same batch -> the same losses and gradients to float rounding."""
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import training_speed  # noqa: E402

from mbrl_ros.training.allocator import keep_freed_memory  # noqa: E402
from mbrl_ros.world_model.networks import ImageDecoder, ImageEncoder, set_channels_last  # noqa: E402


def test_convs_are_channels_last_and_agree_with_nchw():
    torch.manual_seed(0)
    enc, dec = ImageEncoder((64, 64, 3), 4, keypoints=4), None
    dec = ImageDecoder(24, enc.grid, enc.stages)
    convs = [m for m in (*enc.modules(), *dec.modules()) if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    assert convs and all(m.weight.is_contiguous(memory_format=torch.channels_last) for m in convs)
    image = torch.randint(0, 256, (6, 64, 64, 3), dtype=torch.uint8)
    feat = torch.randn(6, 24)
    out_cl = (enc(image), dec(feat))
    assert out_cl[1].shape == (6, 64, 64, 3) and out_cl[1].is_contiguous()  # the NHWC image without a copy
    set_channels_last(enc, False), set_channels_last(dec, False)
    assert all(m.weight.is_contiguous() for m in convs)
    out_nchw = (enc(image), dec(feat))
    for a, b in zip(out_cl, out_nchw):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    # values, not strides, are what a state dict holds: it loads into either layout
    fresh = ImageDecoder(24, enc.grid, enc.stages)
    fresh.load_state_dict(dec.state_dict())
    torch.testing.assert_close(fresh(feat), out_nchw[1], rtol=1e-5, atol=1e-5)


def test_losses_and_training_match_the_code_before():
    episodes = training_speed.synthetic_episodes(n=2, steps=40)
    parity = training_speed.loss_parity("tiny", episodes=episodes, steps=3)
    assert parity["loss_rel_diff"] < 1e-5
    assert parity["grad_max_abs_diff"] <= 1e-4 * max(1.0, parity["grad_max_abs"])
    assert parity["train_loss_max_rel_diff"] < 1e-3  # three optimiser steps apart, still rounding only
    assert parity["loss_before"] > 0


def test_speed_measure_runs_every_variant_and_restores_the_thread_count():
    import torch

    threads = torch.get_num_threads()
    figures = training_speed.measure("tiny", rounds=1, steps=1, episodes=training_speed.synthetic_episodes(2, 40),
                                     both_cores=True)
    assert all(figures.pop(f"paired_ratio_{name}") > 0
               for name in ("after", "after_2t", "before_2t", "after_2t_vs_before_2t"))
    assert set(figures) == {"before", "after", "after_2t", "before_2t"}
    assert all(f["steps_per_s"] > 0 for f in figures.values())
    assert torch.get_num_threads() == threads


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_allocator_setting_applies_and_undoes():
    assert keep_freed_memory(False) is True
    assert keep_freed_memory(True) is True
