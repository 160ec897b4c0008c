# python/tests/test_segment.py — segmentation from Python: the same bits as the segment program
# (single images and stacks, plain and 8-fold), dtypes scaled as files are, stacks page by page,
# and the library's refusals as Python exceptions.
import numpy as np
import pytest

import unetcore
from conftest import STACK, TEST_SLICE


def test_equals_the_segment_program_bit_for_bit(model, program, tmp_path):
    program("segment", "--model", "isbi2012-em", "--input", TEST_SLICE, "--out", tmp_path, "--device", "cpu")
    from_program = unetcore.read_image(str(tmp_path / "00.tif"))
    from_python = unetcore.segment(unetcore.read_image(str(TEST_SLICE)), device="cpu")
    assert from_program.dtype == np.float32 and from_program.shape == (512, 512)
    assert np.array_equal(from_python, from_program)
    assert 0.0 <= from_python.min() and from_python.max() <= 1.0


def test_a_stack_equals_the_program_and_each_page_alone(model, program, tmp_path):
    program("segment", "--model", model.path, "--input", STACK, "--out", tmp_path, "--device", "cpu", "--tta")
    from_program = unetcore.read_stack(str(tmp_path / "isbi-20-22.tif"))
    stack = unetcore.read_stack(str(STACK))
    assert stack.shape == (3, 160, 192) and stack.dtype == np.uint8
    from_python = model.segment(stack, tta=True)
    assert from_python.shape == (3, 160, 192)
    assert np.array_equal(from_python, from_program)
    for i in range(3):
        assert np.array_equal(model.segment(stack[i], tta=True), from_python[i])
    assert not np.array_equal(from_python[0], from_python[1])  # the pages differ: no page repeated


def test_integer_images_are_scaled_like_files_and_floats_taken_as_they_are(model, crop):
    reference = model.segment(crop)
    as_u8 = np.round(crop * 255).astype(np.uint8)
    assert np.array_equal(model.segment(as_u8), reference)  # crop came from uint8 / 255
    # uint16: v * float32(1 / 65535), the scaling segment applies to a 16-bit file.
    as_u16 = as_u8.astype(np.uint16) * 257
    scaled = as_u16.astype(np.float32) * np.float32(1 / 65535)
    assert np.array_equal(model.segment(as_u16), model.segment(scaled))
    np.testing.assert_allclose(scaled, crop, rtol=1e-6)  # the same image, up to float rounding
    assert np.array_equal(model.segment(crop.astype(np.float64)), reference)
    big_endian = crop.astype(">f4")
    assert np.array_equal(model.segment(big_endian), reference)
    assert np.array_equal(model.segment(np.asfortranarray(crop)), reference)  # a copy, same values


def test_all_classes_and_the_foreground_view(model, crop):
    both = model.segment(crop, all_classes=True)
    assert both.shape == (2,) + crop.shape
    np.testing.assert_allclose(both.sum(axis=0), 1.0, atol=1e-6)
    assert np.array_equal(model.segment(crop), both[1])


def test_wrong_dtypes_and_shapes_raise_with_the_library_messages(model, crop):
    with pytest.raises(unetcore.DTypeError, match="int16 are not supported; pass uint8") as e:
        model.segment(crop.astype(np.int16))
    assert isinstance(e.value, TypeError)
    with pytest.raises(TypeError):
        model.segment(crop > 0.5)
    with pytest.raises(unetcore.ShapeError, match=r"an image \(H, W\) or a stack \(N, H, W\)") as e:
        model.segment(crop[None, None])
    assert isinstance(e.value, ValueError)
    with pytest.raises(unetcore.ShapeError, match="empty"):
        model.segment(np.zeros((0, 5), np.float32))
    # The library's own check, passed through: an invalid tile size names the valid ones.
    with pytest.raises(unetcore.ShapeError, match="tile size 301 is not valid.*nearest valid sizes: 300 and 316"):
        model.segment(crop, tile=301)
    with pytest.raises(unetcore.FileError, match="a stack of 3 pages"):
        unetcore.read_image(str(STACK))
    with pytest.raises(OSError):
        unetcore.read_image("/no/such/file.png")


def test_module_segment_takes_names_paths_and_models(model, crop):
    by_name = unetcore.segment(crop, "isbi2012-em", device="cpu")
    assert np.array_equal(by_name, unetcore.segment(crop, model.path, device="cpu"))
    assert np.array_equal(by_name, unetcore.segment(crop, model))
    with pytest.raises(unetcore.DeviceError, match="load it with device='cuda'"):
        unetcore.segment(crop, model, device="cuda")
    with pytest.raises(unetcore.FileError, match="no model named 'no-such-model'.*isbi2012-em"):
        unetcore.segment(crop, "no-such-model")


def test_colour_arrays_are_refused_and_to_grey_converts_as_the_program_does(model, crop):
    rgb = np.stack([np.round(crop * 255).astype(np.uint8)] * 3, axis=-1)  # (160, 300, 3)
    with pytest.raises(unetcore.ShapeError, match="looks like a colour image.*to_grey"):
        model.segment(rgb)
    grey = unetcore.to_grey(rgb)
    assert grey.shape == crop.shape and grey.dtype == np.float32
    f = rgb.astype(np.float32) * np.float32(1 / 255)  # normalised, then the luminance in float32
    expected = np.float32(0.299) * f[..., 0] + np.float32(0.587) * f[..., 1] + np.float32(0.114) * f[..., 2]
    np.testing.assert_allclose(grey, expected, rtol=0, atol=2e-7)  # C++ may contract to an FMA
    assert model.segment(grey).shape == crop.shape
