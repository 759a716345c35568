"""The PyTorch port of dlib's face recognition ResNet: its parser, cache, and agreement
with dlib itself on real faces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from studio.core.analysis.dlib_format import (
    MODEL_NAME,
    DlibFormatError,
    load_dlib_net,
    parse_dlib_dat,
)
from studio.core.analysis.dlib_resnet import DlibFaceEncoder, _add_zero_padded
from studio.core.assets import third_party_dir
from studio.core.datasets import data_available, data_root

MODEL = third_party_dir() / MODEL_NAME
needs_model = pytest.mark.skipif(not MODEL.is_file(), reason=f"{MODEL} not fetched (make models)")
#: The port agrees with dlib to ~6e-7 (float32 rounding); 1e-4 still catches any real slip.
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def encoder(tmp_path_factory) -> DlibFaceEncoder:
    if not MODEL.is_file():
        pytest.skip(f"{MODEL} not fetched (make models)")
    return DlibFaceEncoder(MODEL, cache_dir=tmp_path_factory.mktemp("dlib_cache"))


@pytest.fixture(scope="module")
def dlib_net():
    import dlib

    if not MODEL.is_file():
        pytest.skip(f"{MODEL} not fetched (make models)")
    return dlib.face_recognition_model_v1(str(MODEL))


@pytest.fixture(scope="module")
def real_chips() -> np.ndarray:
    """dlib chips (150 px, padding 0.25) of a few UTKFace and CelebA faces, read in place."""
    import dlib

    from studio.core.analysis.dlib_shape import dlib_shape
    from studio.core.analysis.images import load_image
    from studio.core.analysis.landmarks import FaceLandmarker

    if not data_available():
        pytest.skip(f"research face data not found at {data_root()}")
    paths = [
        *sorted((data_root() / "utkface" / "images").glob("35_0_0_*.jpg"))[:2],
        *sorted((data_root() / "utkface" / "images").glob("70_1_*.jpg"))[:1],
        *sorted((data_root() / "celeba-id" / "images").glob("*.jpg"))[:3],
    ]
    chips = []
    with FaceLandmarker() as landmarker:
        for path in paths:
            rgb = load_image(path).rgb
            faces = landmarker.detect(rgb)
            assert faces, f"no face found in {path.name}"
            shape = dlib_shape(faces[0].landmarks)
            chips.append(np.asarray(dlib.get_face_chip(rgb, shape, 150, 0.25)))
    return np.stack(chips)


@needs_model
def test_parser_reads_the_whole_resnet():
    net = parse_dlib_dat(MODEL)
    kinds = [layer.kind for layer in net.layers]
    assert kinds.count("con") == kinds.count("affine") == kinds.count("relu") == 29
    assert kinds.count("add_prev") == 14 and kinds.count("avg_pool") == 5
    # input_rgb_image_sized: (RGB - these means) / 256, on 150x150 chips
    np.testing.assert_allclose(net.input_mean, (122.782, 117.001, 104.298), atol=1e-4)
    assert net.input_size == (150, 150)
    stem = net.layers[0]
    assert stem.arrays["weight"].shape == (32, 3, 7, 7)
    assert stem.config == dict(stride_y=2, stride_x=2, padding_y=0, padding_x=0)
    fc = net.layers[-1]
    assert fc.kind == "fc" and fc.arrays["weight"].shape == (256, 128)
    assert "bias" not in fc.arrays  # fc_no_bias


@needs_model
def test_cache_is_safetensors_and_loads_the_same_weights(tmp_path):
    parsed = load_dlib_net(MODEL, cache_dir=tmp_path)
    (cache,) = tmp_path.glob("*.safetensors")
    assert len(cache.stem) == 64  # the .dat's sha256
    cached = load_dlib_net(MODEL, cache_dir=tmp_path)
    assert cached.input_mean == parsed.input_mean and len(cached.layers) == len(parsed.layers)
    for a, b in zip(parsed.layers, cached.layers, strict=True):
        assert (a.kind, a.config, a.arrays.keys()) == (b.kind, b.config, b.arrays.keys())
        for name in a.arrays:
            np.testing.assert_array_equal(a.arrays[name], b.arrays[name])


@needs_model
def test_corrupt_cache_is_rebuilt(tmp_path):
    load_dlib_net(MODEL, cache_dir=tmp_path)
    (cache,) = tmp_path.glob("*.safetensors")
    cache.write_bytes(b"not a safetensors file")
    net = load_dlib_net(MODEL, cache_dir=tmp_path)
    assert len(net.layers) == 130
    assert cache.stat().st_size > 20_000_000


def test_not_a_dlib_network_is_refused(tmp_path: Path):
    bad = tmp_path / "bad.dat"
    bad.write_bytes(b"\x01\x01\x01\x05hello")
    with pytest.raises(DlibFormatError):
        parse_dlib_dat(bad)


def test_add_pads_the_smaller_tensor_with_zeros_at_its_end():
    a = torch.ones(1, 4, 4, 4)
    b = torch.full((1, 2, 3, 3), 2.0)
    out = _add_zero_padded(a, b)
    assert out.shape == (1, 4, 4, 4)
    assert torch.all(out[:, :2, :3, :3] == 3) and out.sum() == 64 + 2 * 18


def test_wrong_chip_size_is_refused(encoder):
    with pytest.raises(ValueError, match="150"):
        encoder.descriptors(np.zeros((1, 112, 112, 3), np.uint8))


@pytest.mark.data
@pytest.mark.slow
def test_descriptors_match_dlib_on_real_faces(encoder, dlib_net, real_chips):
    ours = encoder.descriptors(real_chips).astype(np.float64)
    ref = np.stack([np.asarray(dlib_net.compute_face_descriptor(c)) for c in real_chips])
    assert ours.shape == (len(real_chips), 128)
    assert np.abs(ours - ref).max() < TOLERANCE
    i, j = np.triu_indices(len(ref), 1)
    d_ours = np.linalg.norm(ours[i] - ours[j], axis=1)
    d_ref = np.linalg.norm(ref[i] - ref[j], axis=1)
    assert np.abs(d_ours - d_ref).max() < TOLERANCE


@pytest.mark.data
def test_batches_and_single_chips_agree(encoder, real_chips):
    batch = encoder.descriptors(real_chips, batch_size=4)  # a full and a partial batch
    one_by_one = np.concatenate([encoder.descriptors(c) for c in real_chips])
    np.testing.assert_allclose(batch, one_by_one, atol=1e-5)
    assert batch.dtype == np.float32
