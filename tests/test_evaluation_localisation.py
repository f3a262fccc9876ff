"""Relevance mass, relevance rank accuracy and the pointing game: hand cases and bad input."""
from __future__ import annotations

import pytest
import torch
from evaluation_nets import box_masks, random_maps

import xaikit as xk

ev = xk.evaluation


def test_mask_only_map_scores_one():
    masks = box_masks()
    attr = masks.float()[:, None] * 2.5
    for metric in (ev.relevance_mass, ev.relevance_rank, ev.pointing_game):
        torch.testing.assert_close(metric(attr, masks), torch.ones(4))
    torch.testing.assert_close(ev.relevance_mass(attr, masks, part="signed"), torch.ones(4))


def test_relevance_mass_hand_case():
    attr = torch.tensor([[[3.0, 1.0], [-2.0, 4.0]]])
    mask = torch.tensor([[[True, False], [True, False]]])
    torch.testing.assert_close(ev.relevance_mass(attr, mask), torch.tensor([3.0 / 8]))
    torch.testing.assert_close(ev.relevance_mass(attr, mask, part="signed"),
                               torch.tensor([1.0 / 6]))
    torch.testing.assert_close(ev.relevance_mass(attr, mask, part="absolute"),
                               torch.tensor([5.0 / 10]))
    # channels are summed first; a 0/1 mask works like a bool one
    two = torch.stack([attr / 2, attr / 2], 1)
    torch.testing.assert_close(ev.relevance_mass(two, mask.long()), torch.tensor([3.0 / 8]))


def test_relevance_rank_hand_case_and_ties(rng_state_guard):
    attr = torch.tensor([[[5.0, 4.0, 3.0], [2.0, 1.0, 0.0]]])
    mask = torch.tensor([[[True, False, True], [False, False, True]]])  # K = 3
    torch.testing.assert_close(ev.relevance_rank(attr, mask), torch.tensor([2.0 / 3]))
    flat = torch.zeros(1, 8, 8)
    m = torch.zeros(1, 8, 8, dtype=torch.bool)
    m[0, :4] = True  # half the image
    values = torch.stack([ev.relevance_rank(flat, m, seed=s) for s in range(200)])
    assert torch.equal(values[0], ev.relevance_rank(flat, m, seed=0))
    assert 0.45 < float(values.mean()) < 0.55  # a random tie-break, not "all in the mask"


def test_pointing_game_hand_cases():
    mask = torch.tensor([[[True, False], [False, False]]]).expand(3, 2, 2)
    attr = torch.tensor([[[9.0, 1.0], [2.0, 3.0]],      # max inside: hit
                         [[1.0, 9.0], [2.0, 3.0]],      # max outside: miss
                         [[9.0, 9.0], [2.0, 3.0]]])     # tie, one of two inside: 1/2
    torch.testing.assert_close(ev.pointing_game(attr, mask), torch.tensor([1.0, 0.0, 0.5]))
    torch.testing.assert_close(ev.pointing_game(torch.zeros(1, 2, 2), mask[:1]),
                               torch.tensor([0.25]))


def test_pointing_game_treats_float_noise_as_a_tie():
    # two maxima that differ by rounding error only (as bilinearly upsampled Grad-CAM maps on
    # other CPU kernels): a tie, so the score does not depend on which one the machine rounds up
    mask = torch.tensor([[[True, False], [False, False]]])
    for dtype in (torch.float32, torch.float64):
        eps = torch.finfo(dtype).eps
        near = torch.tensor([[[1.0, 1.0 + 8 * eps], [0.5, 0.0]]], dtype=dtype)
        far = torch.tensor([[[1.0, 1.0 + 1000 * eps], [0.5, 0.0]]], dtype=dtype)
        assert ev.pointing_game(near, mask).item() == 0.5
        assert ev.pointing_game(far, mask).item() == 0.0


def test_random_map_scores_about_the_mask_share():
    masks = box_masks(n=64, side=12)
    gen = torch.Generator().manual_seed(0)
    attr = torch.rand((64, 12, 12), generator=gen)
    share = float(masks.float().mean())
    assert abs(float(ev.relevance_mass(attr, masks).mean()) - share) < 0.03
    assert abs(float(ev.relevance_rank(attr, masks).mean()) - share) < 0.05


@pytest.mark.parametrize("metric", [ev.relevance_mass, ev.relevance_rank, ev.pointing_game])
def test_bad_input(metric):
    masks, attr = box_masks(), random_maps()
    with pytest.raises(ValueError, match="do not match"):
        metric(attr, masks[:, :10])
    with pytest.raises(ValueError, match="do not match"):
        metric(attr, masks[:3])
    empty = masks.clone()
    empty[2] = False
    with pytest.raises(ValueError, match=r"empty mask .*\[2\]"):
        metric(attr, empty)
    nan = attr.clone()
    nan[1, 0, 3, 3] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        metric(nan, masks)
    with pytest.raises(ValueError, match="0 and 1"):
        metric(attr, masks.float() * 2)
    with pytest.raises(TypeError):
        metric(attr, masks.numpy())
