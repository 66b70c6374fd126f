from __future__ import annotations

import numpy as np
import pytest
import torch

from otgrad.data.images import load_image_set, patch_sampler, psnr


def test_fallback_without_data(tmp_path):
    for name in ("bsd-train", "bsd68", "ct-validation"):
        images, source = load_image_set(name, tmp_path / "missing", limit=3)
        assert source == "fallback:scikit-image"
        assert len(images) == 3
        assert all(im.ndim == 2 and 0 <= im.min() and im.max() <= 1 for im in images)


def test_fallback_sets_are_whole_and_disjoint(tmp_path):
    missing = tmp_path / "missing"
    train, _ = load_image_set("bsd-train", missing)
    assert train and all(im.shape == (180, 180) for im in train)  # no empty windows
    patch_sampler(train, size=40, batch_size=4)  # the whole fallback set trains
    bsd68, set12 = load_image_set("bsd68", missing)[0], load_image_set("set12", missing)[0]
    assert all(a.shape != b.shape for a, b in zip(bsd68, set12, strict=True))
    ct_train, ct_val = (
        load_image_set("ct-train", missing, 4)[0],
        load_image_set("ct-validation", missing, 4)[0],
    )
    assert not any(np.array_equal(a, b) for a in ct_train for b in ct_val)


def test_unknown_set():
    with pytest.raises(ValueError, match="name"):
        load_image_set("imagenet")


def test_psnr():
    x = torch.zeros(2, 1, 4, 4)
    y = x + 0.1
    assert torch.allclose(psnr(y, x), torch.full((2,), 20.0))
    with pytest.raises(ValueError, match="shape"):
        psnr(x, x[:1])


@pytest.mark.parametrize("stride", [None, 4])
def test_patch_sampler(stride):
    images = [np.random.default_rng(i).random((30, 24)) for i in range(3)]
    sample = patch_sampler(images, size=12, batch_size=5, sigma=0.1, stride=stride)
    clean, noisy = sample(torch.Generator().manual_seed(0))
    assert clean.shape == noisy.shape == (5, 1, 12, 12)
    assert 0.05 < float((noisy - clean).std()) < 0.2
    again = sample(torch.Generator().manual_seed(0))[0]
    assert torch.equal(clean, again)
