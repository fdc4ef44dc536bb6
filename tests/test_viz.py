"""Image grids: originals and reconstructions in alternating rows, saved as PNG."""

import torch
from PIL import Image

from vqlearn.viz import reconstruction_grid, save_image


def test_reconstruction_grid_alternates_rows_and_pads_the_last():
    originals = -torch.ones(10, 1, 4, 4)  # black in [-1, 1]
    reconstructions = torch.ones(10, 1, 4, 4)  # white
    grid = reconstruction_grid(originals, reconstructions, nrow=8)
    # 4 rows of 8 tiles (the last pair padded with blank tiles), 2 px of padding, grey repeated to RGB
    assert grid.shape == (3, 4 * (4 + 2) + 2, 8 * (4 + 2) + 2)
    tile = lambda row, col: grid[:, 2 + row * 6 : 6 + row * 6, 2 + col * 6 : 6 + col * 6]  # noqa: E731
    assert (tile(0, 0) == 0).all() and (tile(1, 0) == 1).all()  # originals over reconstructions
    assert (tile(2, 1) == 0).all() and (tile(3, 1) == 1).all()  # images 9 and 10
    assert (tile(2, 2) == 1).all()  # padding tile, white


def test_save_image_writes_a_png(tmp_path):
    grid = reconstruction_grid(torch.zeros(2, 3, 5, 5), torch.zeros(2, 3, 5, 5), nrow=2)
    path = tmp_path / "samples" / "step_000001.png"
    save_image(grid, path)
    with Image.open(path) as image:
        assert image.size == (grid.shape[2], grid.shape[1]) and image.mode == "RGB"
