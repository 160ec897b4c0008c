# python/tests/test_sharing.py — what crosses between NumPy and the library without a copy, checked
# by addresses and by sharing: a contiguous float32 image is read in place while the call runs (a
# change made between two tiles shows in the later tiles), a DLPack tensor likewise, the result is
# the library's buffer; a non-contiguous array is copied first (a change does not show).
import numpy as np
import pytest

import unetcore

TILE = 316  # 132 x 132 output tiles: the 160 x 300 crop takes 2 x 3 of them, row by row


def changed_after_first_tile(model, image, change):
    """Segments `image`, applying change() after the first of the 6 tiles."""
    def progress(done, total):
        assert total == 6
        if done == 1:
            change()
    return model.segment(image, tile=TILE, progress=progress)


def test_a_float32_image_is_read_in_place(model, crop):
    original = model.segment(crop, tile=TILE)
    modified = crop.copy()
    modified[:, 200:] = 0.0
    expected_after = model.segment(modified, tile=TILE)

    live = changed_after_first_tile(model, crop, lambda: crop.__setitem__((slice(None), slice(200, None)), 0.0))
    # Tile 1 (rows 0-131, columns 0-131) was computed before the change, the others after it.
    assert np.array_equal(live[:132, :132], original[:132, :132])
    assert np.array_equal(live[:, 132:], expected_after[:, 132:])
    assert not np.array_equal(live[:, 132:], original[:, 132:])


def test_a_non_contiguous_image_is_copied_before_the_call(model, crop):
    wide = np.zeros((160, 600), np.float32)
    wide[:, ::2] = crop
    view = wide[:, ::2]
    assert not view.flags.c_contiguous
    original = model.segment(crop, tile=TILE)
    result = changed_after_first_tile(model, view, lambda: view.__setitem__((slice(None), slice(200, None)), 0.0))
    assert np.array_equal(result, original)


def test_the_result_is_the_library_buffer(model, crop):
    p = model.segment(crop)
    assert not p.flags.owndata
    everything = p.base
    assert everything.shape == (2,) + crop.shape and everything.dtype == np.float32
    assert not everything.flags.owndata  # owned by the library's tensor, kept alive by a capsule
    # p is plane 1 of the library's [K, H, W] buffer: its address is one plane further on.
    plane_bytes = crop.size * 4
    assert p.__array_interface__["data"][0] == everything.__array_interface__["data"][0] + plane_bytes
    assert p.flags.c_contiguous
    # The buffer outlives the model call and the view's other owners.
    del everything
    assert np.isfinite(p).all()


def test_dlpack_in_and_out_without_copies(model, crop):
    torch = pytest.importorskip("torch")
    tensor = torch.from_numpy(crop.copy())
    original = model.segment(crop, tile=TILE)
    live = changed_after_first_tile(model, tensor, lambda: tensor[:, 200:].zero_())
    modified = crop.copy()
    modified[:, 200:] = 0.0
    assert np.array_equal(live[:, 132:], model.segment(modified, tile=TILE)[:, 132:])
    assert np.array_equal(live[:132, :132], original[:132, :132])
    # Out: NumPy's DLPack export hands PyTorch the library's memory.
    back = torch.from_dlpack(live)
    assert back.data_ptr() == live.__array_interface__["data"][0]
