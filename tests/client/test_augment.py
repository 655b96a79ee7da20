import torch

from client.augment import augment, cutout, shift


def rng():
    return torch.Generator().manual_seed(0)


def test_shift_moves_the_image_and_fills_with_zeros():
    images = torch.ones(16, 1, 28, 28)

    shifted = shift(images, rng())

    assert shifted.shape == images.shape
    # Up to 3 px (1/8 of 28) per direction: at most 3 zero rows and columns, never more.
    kept = shifted[:, 0, 3:-3, 3:-3]
    assert torch.equal(kept, torch.ones_like(kept))
    assert (shifted == 0).any()


def test_cutout_zeroes_one_square_of_about_half_the_size():
    images = torch.ones(64, 1, 28, 28)

    cut = cutout(images, rng())

    zeroed = (cut == 0).sum(dim=(1, 2, 3))
    assert zeroed.max() <= 15 * 15
    assert zeroed.float().mean() > 50


def test_each_augmented_row_depends_on_its_own_input_only():
    # Per-row independence keeps one record's clipped gradient a function of that record.
    images = torch.randn(8, 1, 28, 28, requires_grad=True)

    augment(images, rng())[0].sum().backward()

    assert images.grad[0].abs().sum() > 0
    assert torch.equal(images.grad[1:], torch.zeros_like(images.grad[1:]))
