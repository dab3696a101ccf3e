"""U-Net shapes, the thin stochastic head (cheap MC path == naive path) and the weights file."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from learning.networks import (
    WEIGHTS_FORMAT,
    UNetConfig,
    WeightsFormatError,
    build_model,
    load_pretrained_encoder,
    load_weights,
    save_weights,
    weights_payload,
)
from learning.uncertainty import score_mc, score_mc_naive

torch.set_num_threads(1)  # the CI box is shared; one thread is also the fastest under load


def _model(seed: int = 0, **kw: object) -> torch.nn.Module:
    torch.manual_seed(seed)
    cfg = {"depth": 3, "base_width": 4, "num_classes": 3, "dropout": 0.5} | kw
    model = build_model(UNetConfig(**cfg))
    # A few training-mode passes give BatchNorm non-trivial running statistics.
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.rand(2, 3, 16, 16))
    return model.eval()


@pytest.mark.parametrize(
    ("depth", "width", "classes", "height", "wide"),
    [(1, 4, 2, 16, 16), (2, 8, 4, 32, 48), (3, 4, 5, 37, 50), (4, 4, 3, 64, 64)],
)
def test_output_shape_matches_input_for_any_size_and_class_count(
    depth: int, width: int, classes: int, height: int, wide: int
) -> None:
    model = build_model(UNetConfig(depth=depth, base_width=width, num_classes=classes)).eval()
    x = torch.rand(2, 3, height, wide)
    with torch.no_grad():
        logits = model(x)
        features, embedding = model.forward_features(x)
    assert logits.shape == (2, classes, height, wide)
    assert features.shape == (2, width, height, wide)
    assert embedding.shape == (2, width * 2 ** (depth - 1))


def test_build_model_from_settings_dict_rejects_unknown_keys() -> None:
    assert build_model({"depth": 2, "base_width": 4}).config.depth == 2
    with pytest.raises(ValueError, match="widht"):
        build_model({"widht": 4})


def test_mc_samples_differ_with_dropout_and_agree_without() -> None:
    x = torch.rand(2, 3, 16, 16)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        noisy = _model(dropout=0.5)
        feats, _ = noisy.forward_features(x)
        masks = noisy.head.sample_masks(2, 2, generator=gen)
        assert not torch.equal(noisy.head(feats, masks[0]), noisy.head(feats, masks[1]))
        # train mode: F.dropout2d inside the head, fresh masks per call
        noisy.train()
        assert not torch.equal(noisy.head(feats), noisy.head(feats))
        plain = _model(dropout=0.0)
        feats, _ = plain.forward_features(x)
        masks = plain.head.sample_masks(2, 2, generator=gen)
        assert torch.equal(masks, torch.ones_like(masks))
        assert torch.equal(plain.head(feats, masks[0]), plain.head(feats, masks[1]))
        assert torch.equal(plain(x), plain(x))


@pytest.mark.parametrize("hidden", [0, 6])
def test_masked_head_equals_dropout_applied_to_features(hidden: int) -> None:
    model = _model(head_hidden=hidden)
    feats = torch.randn(3, 4, 8, 8)
    mask = model.head.sample_masks(1, 3, generator=torch.Generator().manual_seed(1))[0]
    with torch.no_grad():
        folded = model.head(feats, mask)  # mask folded into the 1x1 weights (bmm)
        h = model.head.first(feats * mask[:, :, None, None])
        direct = model.head.second(F.relu(h)) if hidden else h
        assert torch.allclose(folded, direct, atol=1e-5)
        # an all-ones mask is the deterministic (eval) head
        assert torch.allclose(model.head(feats, torch.ones(3, 4)), model.head(feats), atol=1e-5)


def test_cheap_mc_path_equals_naive_full_passes_with_same_masks() -> None:
    model = _model()
    x = torch.rand(4, 3, 24, 24)
    masks = model.head.sample_masks(8, 4, generator=torch.Generator().manual_seed(3))
    cheap = score_mc(model, x, masks=masks)
    naive = score_mc_naive(model, x, masks=masks)
    assert torch.allclose(cheap.entropy, naive.entropy, atol=1e-4)
    assert torch.allclose(cheap.bald, naive.bald, atol=1e-4)
    assert torch.equal(cheap.class_pixels, naive.class_pixels)
    assert torch.allclose(cheap.embedding, naive.embedding, atol=1e-5)
    assert float(cheap.bald.max()) > 0  # the samples really differ


def test_weights_round_trip_keeps_architecture_state_and_metadata(tmp_path: Path) -> None:
    model = _model(head_hidden=5)
    path = tmp_path / "w.pt"
    save_weights(model, path, {"model_version": 7, "classes": ["bg", "tissue", "gland"]})
    loaded, meta = load_weights(path)
    assert loaded.config == model.config
    assert meta == {"model_version": 7, "classes": ["bg", "tissue", "gland"]}
    for (k, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert torch.equal(a, b), k
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == WEIGHTS_FORMAT and raw["version"] == 1


def test_unknown_weights_version_is_refused_with_clear_error(tmp_path: Path) -> None:
    payload = weights_payload(_model())
    payload["version"] = 99
    torch.save(payload, tmp_path / "future.pt")
    with pytest.raises(WeightsFormatError, match="version 99 is not supported"):
        load_weights(tmp_path / "future.pt")
    torch.save({"state_dict": {}}, tmp_path / "foreign.pt")
    with pytest.raises(WeightsFormatError, match="not a histocrowd"):
        load_weights(tmp_path / "foreign.pt")


def test_pretrained_encoder_loads_from_weights_file_or_plain_state_dict(tmp_path: Path) -> None:
    source = _model(seed=1)
    save_weights(source, tmp_path / "w.pt")
    torch.save(source.encoder.state_dict(), tmp_path / "enc.pt")
    for name in ("w.pt", "enc.pt"):
        target = _model(seed=2)
        decoder_before = {k: v.clone() for k, v in target.decoder.state_dict().items()}
        load_pretrained_encoder(target, tmp_path / name)
        for k, v in source.encoder.state_dict().items():
            assert torch.equal(target.encoder.state_dict()[k], v)
        for k, v in decoder_before.items():  # only the encoder changes
            assert torch.equal(target.decoder.state_dict()[k], v)
    wider = _model(base_width=8)
    with pytest.raises(RuntimeError, match="size mismatch"):
        load_pretrained_encoder(wider, tmp_path / "enc.pt")
