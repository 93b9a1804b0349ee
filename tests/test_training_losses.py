"""Training losses and augmentation: properties that a wrong implementation breaks."""

import pytest
import torch

from gcp_colorize.training import gan_losses
from gcp_colorize.training.diffaugment import colour_jitter, cutout, diff_augment, translate
from gcp_colorize.training.colour_losses import ColourRarity
from gcp_colorize.training.feature_losses import contextual_loss


def test_contextual_loss_ignores_where_features_are_but_not_what_they_are():
    torch.manual_seed(0)
    y = torch.randn(2, 16, 6, 6)
    shuffled = y.flatten(2)[:, :, torch.randperm(36)].view_as(y)
    other = torch.randn(2, 16, 6, 6)
    same = contextual_loss(y, y).item()
    assert same == pytest.approx(contextual_loss(shuffled, y).item(), abs=1e-5)
    assert contextual_loss(other, y).item() > same + 0.5


def test_contextual_loss_gradient_pulls_towards_the_reference():
    torch.manual_seed(1)
    y = torch.randn(1, 8, 5, 5)
    x = torch.randn(1, 8, 5, 5, requires_grad=True)
    opt = torch.optim.Adam([x], lr=0.05)
    start = contextual_loss(x, y).item()
    for _ in range(100):
        opt.zero_grad()
        loss = contextual_loss(x, y)
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * start


def test_contextual_loss_rejects_mismatched_maps():
    with pytest.raises(ValueError, match="channels"):
        contextual_loss(torch.zeros(1, 4, 3, 3), torch.zeros(1, 5, 3, 3))


def test_hinge_and_lsgan_losses_are_zero_only_for_a_perfect_discriminator():
    real, fake = torch.full((4,), 2.0), torch.full((4,), -2.0)
    assert gan_losses.hinge_d_loss(real, fake).item() == 0.0
    assert gan_losses.hinge_d_loss(fake, real).item() == pytest.approx(6.0)
    assert gan_losses.hinge_g_loss(fake).item() == pytest.approx(2.0)
    ones, zeros = [torch.ones(1, 1, 3, 3)] * 2, [torch.zeros(1, 1, 3, 3)] * 2
    assert gan_losses.lsgan_d_loss(ones, zeros).item() == 0.0
    assert gan_losses.lsgan_d_loss(zeros, ones).item() == pytest.approx(1.0)
    assert gan_losses.lsgan_g_loss(zeros).item() == pytest.approx(1.0)


def test_translate_shifts_whole_images_and_fills_zeros():
    torch.manual_seed(0)
    x = torch.rand(16, 2, 8, 8) + 1.0  # no zeros in the input
    y = translate(x, ratio=0.25)
    for xi, yi in zip(x, y):
        found = False
        for dy in range(-2, 3):
            for dx in range(-2, 3):
                shifted = torch.roll(xi, (dy, dx), dims=(1, 2))
                kept = yi != 0
                if torch.equal(yi[kept], shifted[kept]) and kept.sum() == (8 - abs(dy)) * (8 - abs(dx)) * 2:
                    found = True
        assert found


def test_cutout_zeroes_a_half_side_rectangle_in_every_channel():
    torch.manual_seed(0)
    x = torch.ones(32, 3, 8, 8)
    y = cutout(x)
    zeros = (y == 0)
    assert torch.equal(zeros[:, 0], zeros[:, 2])
    counts = zeros[:, 0].flatten(1).sum(1)
    assert counts.max() == 16 and counts.min() >= 4  # 4x4 box, clipped at the borders


def test_diff_augment_passes_gradients_and_checks_its_input():
    x = torch.rand(2, 3, 8, 8, requires_grad=True)
    diff_augment(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    with pytest.raises(ValueError):
        diff_augment(torch.rand(3, 8, 8))


def test_colour_jitter_changes_each_image_as_a_whole_and_passes_gradients():
    torch.manual_seed(0)
    gray = torch.linspace(-1, 1, 16).view(1, 1, 4, 4).repeat(64, 3, 1, 1)
    jittered = colour_jitter(gray)
    # A gray image stays gray (saturation scales the distance to gray); brightness and
    # contrast differ per image.
    torch.testing.assert_close(jittered[:, 0], jittered[:, 1])
    assert jittered.mean((1, 2, 3)).std() > 0.1 and jittered.std((1, 2, 3)).std() > 0.05
    red = torch.zeros(64, 3, 4, 4)
    red[:, 0] = 0.5
    spread = colour_jitter(red)
    saturation = (spread[:, 0] - spread[:, 1]).mean((1, 2))  # 0.5 x U(0, 2) x U(0.5, 1.5) (contrast)
    assert 0 <= saturation.min() < 0.1 and 1.0 < saturation.max() <= 1.5
    x = torch.rand(2, 3, 8, 8, requires_grad=True)
    diff_augment(x, colour=True).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_mode_seeking_loss_punishes_a_generator_that_ignores_z():
    torch.manual_seed(0)
    z_a, z_b = torch.randn(4, 120), torch.randn(4, 120)
    same = torch.rand(4, 3, 16, 16)
    different = torch.rand(4, 3, 16, 16)
    collapsed = gan_losses.mode_seeking_loss(same, same + 1e-3, z_a, z_b)
    diverse = gan_losses.mode_seeking_loss(same, different, z_a, z_b)
    assert collapsed.item() > 20 * diverse.item()
    images = same.clone().requires_grad_(True)
    gan_losses.mode_seeking_loss(images, different, z_a, z_b).backward()
    assert images.grad.abs().sum() > 0


def test_diversity_loss_asks_two_colorizations_to_differ_up_to_a_margin():
    from gcp_colorize.training.colour_losses import diversity_loss
    torch.manual_seed(0)
    ab = torch.rand(3, 2, 32, 32) - 0.5
    assert diversity_loss(ab, ab).item() == pytest.approx(1.0)
    assert diversity_loss(ab, ab + 0.2).item() == 0.0          # beyond the margin: no push
    assert diversity_loss(ab, ab + 0.05).item() == pytest.approx(0.5, abs=1e-5)
    other = (ab + 0.01).requires_grad_(True)
    opt = torch.optim.SGD([other], lr=20.0)
    for _ in range(20):
        opt.zero_grad()
        diversity_loss(ab, other).backward()
        opt.step()
    assert diversity_loss(ab, other).item() < 0.5             # pushed apart
    with pytest.raises(ValueError):
        diversity_loss(torch.zeros(1, 2, 8, 8), torch.zeros(1, 2, 4, 4))


def test_centred_diversity_does_not_count_a_cast_over_the_whole_photo():
    from gcp_colorize.training.colour_losses import diversity_loss
    torch.manual_seed(0)
    ab = torch.rand(3, 2, 32, 32) - 0.5
    cast = ab + torch.tensor([0.2, -0.1])[:, None, None]
    assert diversity_loss(ab, cast).item() == 0.0
    assert diversity_loss(ab, cast, centred=True).item() == pytest.approx(1.0)
    left_half_recoloured = ab.clone()
    left_half_recoloured[..., :16] += 0.4                 # one region, differs by 0.2 ab/110
    assert diversity_loss(ab, left_half_recoloured, centred=True).item() == 0.0


def test_palette_loss_compares_colour_distributions_not_places():
    from gcp_colorize.training.colour_losses import palette_loss
    torch.manual_seed(0)
    target = torch.rand(2, 2, 16, 16) - 0.5
    shuffled = target.flatten(2)[:, :, torch.randperm(256)].view_as(target)
    assert palette_loss(shuffled, target).item() < 1e-6
    sepia = 0.2 * target
    assert palette_loss(sepia, target).item() > 0.05
    ab = sepia.clone().requires_grad_(True)
    opt = torch.optim.SGD([ab], lr=5.0)
    for _ in range(50):
        opt.zero_grad()
        palette_loss(ab, target).backward()
        opt.step()
    assert ab.detach().norm(dim=1).mean() > 2 * sepia.norm(dim=1).mean()  # more colourful
    with pytest.raises(ValueError):
        palette_loss(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 4))


def test_colour_rarity_weights_rare_colours_up_and_keeps_the_loss_scale():
    gen = torch.Generator().manual_seed(0)
    common = torch.randn(9000, 2, generator=gen) * 0.02           # near-gray pixels
    rare = torch.tensor([[0.5, 0.4]]) + torch.randn(1000, 2, generator=gen) * 0.02
    colours = torch.cat((common, rare))
    rarity = ColourRarity.from_ab(colours)
    image = colours.T.reshape(1, 2, 100, 100)
    w = rarity(image)
    assert w.shape == (1, 1, 100, 100)
    w_common, w_rare = w.flatten()[:9000].mean(), w.flatten()[9000:].mean()
    assert w_rare > 3 * w_common
    # E_p[w] = 1 over the training colours themselves.
    assert abs(w.mean().item() - 1.0) < 0.05


def test_cast_loss_counts_a_tint_over_the_photo_not_colours_moved_within_it():
    from gcp_colorize.training.colour_losses import cast_loss
    torch.manual_seed(0)
    truth = torch.rand(2, 2, 16, 16) - 0.5
    alpha = torch.ones(2, 1, 16, 16)
    assert cast_loss(truth, truth, alpha).item() == 0.0
    assert cast_loss(truth + 0.1, truth, alpha).item() == pytest.approx(0.1, abs=1e-6)
    assert cast_loss(truth.flip(-1), truth, alpha).item() == pytest.approx(0.0, abs=1e-6)
    cut_out = alpha.clone()
    cut_out[..., 8:] = 0                           # the fill of a cut-out does not count
    tinted_fill = truth.clone()
    tinted_fill[..., 8:] += 0.5
    assert cast_loss(tinted_fill, truth, cut_out).item() == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError):
        cast_loss(truth, truth, alpha[:, :, :8])
