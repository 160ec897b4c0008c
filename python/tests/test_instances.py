# python/tests/test_instances.py — objects from Python: the same label images as
# `segment --instances` writes (bit for bit, for an image and a stack, default and given
# options), the steps' effects on a hand-made map, SEG as `evaluate --cells` computes it, and the
# library's refusals.
import json

import numpy as np
import pytest

import unetcore
from conftest import STACK, TEST_SLICE


def test_equals_segment_instances_bit_for_bit(model, program, tmp_path):
    flags = ["--instances", "--min-size", "30", "--fill-holes", "on", "--threshold", "0.6", "--core-threshold", "0.8"]
    program("segment", "--model", "isbi2012-em", "--input", TEST_SLICE, "--out", tmp_path, "--device", "cpu", *flags)
    written = unetcore.read_image(str(tmp_path / "00_mask.tif"))
    assert written.dtype == np.uint16 and written.shape == (512, 512)
    image = unetcore.read_image(str(TEST_SLICE))
    labels = unetcore.instances(model.segment(image), threshold=0.6, min_size=30, fill_holes=True, core_threshold=0.8)
    assert labels.dtype == np.int32 and labels.shape == (512, 512)
    assert labels.max() > 50  # an EM slice has many cells: a real comparison, not two empty masks
    assert np.array_equal(labels, written)
    assert np.array_equal(model.instances(image, threshold=0.6, min_size=30, fill_holes=True, core_threshold=0.8), written)


def test_a_stack_with_the_models_options_equals_the_program(model, program, tmp_path):
    program("segment", "--model", model.path, "--input", STACK, "--out", tmp_path, "--device", "cpu", "--instances")
    # a mask per page, as the challenge's result layout has one per frame
    written = np.stack([unetcore.read_image(str(tmp_path / f"isbi-20-22_p{i}_mask.tif")) for i in range(3)])
    stack = unetcore.read_stack(str(STACK))
    labels = model.instances(stack)
    assert labels.shape == written.shape == (3, 160, 192)
    assert np.array_equal(labels, written)
    assert model.instance_options["threshold"] == pytest.approx(0.5)  # the shipped EM model carries none


def test_each_step_on_a_hand_made_map():
    p = np.zeros((12, 12), np.float32)
    p[1:6, 1:6] = 0.9   # a 25-pixel object with a hole
    p[3, 3] = 0.1
    p[8:10, 8:10] = 0.7  # a 4-pixel speck, above 0.5 but below 0.8
    labels = unetcore.instances(p)
    assert labels.max() == 2 and labels[3, 3] == 0 and labels[1, 1] == 1 and labels[8, 8] == 2
    assert unetcore.instances(p, fill_holes=True)[3, 3] == 1
    assert unetcore.instances(p, min_size=5).max() == 1
    assert unetcore.instances(p, threshold=0.8).max() == 1
    assert np.array_equal(unetcore.instances((p * 255).astype(np.uint8)), labels)  # integers scaled as files
    # two cores joined by a bridge of 0.6: one object by threshold, two grown from cores > 0.8
    q = np.zeros((5, 11), np.float32)
    q[1:4, 1:5] = 0.9
    q[1:4, 6:10] = 0.9
    q[2, 5] = 0.6
    assert unetcore.instances(q).max() == 1
    grown = unetcore.instances(q, core_threshold=0.8)
    assert grown.max() == 2 and grown[2, 2] != grown[2, 8] and grown[2, 5] > 0


def test_choose_instance_options_finds_the_cores_that_split_a_bridge():
    # two 12-pixel cells joined by one pixel of 0.6: plain components merge them, cores > 0.8 do not
    q = np.zeros((5, 11), np.float32)
    q[1:4, 1:5] = 0.9
    q[1:4, 6:10] = 0.9
    q[2, 5] = 0.6
    truth = np.zeros((5, 11), np.uint16)
    truth[1:4, 1:5] = 1
    truth[1:4, 6:10] = 2
    c = unetcore.choose_instance_options(q, truth, thresholds=[0.5], core_thresholds=[0, 0.8])
    assert c["chosen"]["threshold"] == 0.5 and c["chosen"]["core_threshold"] == 0.8
    assert [t["core_threshold"] for t in c["trials"]] == [0, 0.8]
    assert c["trials"][0]["seg"] == pytest.approx(12 / 25, abs=1e-6)  # one object of 25 px covers both
    for t in c["trials"]:  # each trial is instances + evaluate_cells
        labels = unetcore.instances(q, threshold=t["threshold"], core_threshold=t["core_threshold"])
        assert unetcore.evaluate_cells(labels, truth)["seg"] == pytest.approx(t["seg"], abs=1e-6)
    # train_cells' grid: 8 thresholds x 6 core levels, less the levels not above a threshold
    standard = unetcore.choose_instance_options([q, q], [truth, truth], min_size=5)
    assert len(standard["trials"]) == 45 and standard["chosen"]["min_size"] == 5
    assert standard["chosen_on"] == "2 frames"
    with pytest.raises(unetcore.ArgumentError, match="thresholds must lie in"):
        unetcore.choose_instance_options(q, truth, thresholds=[1.5])
    with pytest.raises(unetcore.ArgumentError, match="core_thresholds is empty"):
        unetcore.choose_instance_options(q, truth, core_thresholds=[])
    with pytest.raises(unetcore.ArgumentError, match="ground truths"):
        unetcore.choose_instance_options([q, q], truth)


def test_seg_equals_evaluate_cells(program, tmp_path):
    truth = np.zeros((2, 20, 20), np.uint16)
    truth[0, 2:8, 2:8] = 1
    truth[0, 10:18, 10:18] = 2
    truth[1, 5:15, 5:15] = 7
    predicted = np.zeros_like(truth)
    predicted[0, 2:8, 2:7] = 3       # covers 30 of 36: J = 30/36
    predicted[0, 10:13, 10:18] = 4   # 24 of 64: not more than half, J = 0
    predicted[1, 5:15, 6:15] = 1     # 90 of 100: J = 0.9
    scores = unetcore.evaluate_cells(predicted, truth, names=["000", "001"])
    assert scores["seg"] == pytest.approx((30 / 36 + 0 + 0.9) / 3)
    assert scores["objects"] == 3 and scores["matched"] == 2 and scores["predicted"] == 3
    assert [f["name"] for f in scores["frames"]] == ["000", "001"]
    # the program on the same frames, in the challenge's folder layout
    (tmp_path / "RES").mkdir()
    (tmp_path / "GT" / "SEG").mkdir(parents=True)
    for t in range(2):
        unetcore.write_tiff(str(tmp_path / "RES" / f"mask00{t}.tif"), predicted[t])
        unetcore.write_tiff(str(tmp_path / "GT" / "SEG" / f"man_seg00{t}.tif"), truth[t])
    out = program("evaluate", "--cells", "--pred", tmp_path / "RES", "--truth", tmp_path / "GT", "--partial", "none",
                  "--json", tmp_path / "cells.json")
    from_program = json.loads((tmp_path / "cells.json").read_text())
    assert from_program["seg"] == scores["seg"] and from_program["iou"] == scores["iou"]
    assert from_program["frames"] == scores["frames"]


def test_refusals():
    with pytest.raises(unetcore.ArgumentError, match="core_threshold"):
        unetcore.instances(np.zeros((8, 8), np.float32), threshold=0.6, core_threshold=0.5)
    with pytest.raises(unetcore.ArgumentError, match="threshold"):
        unetcore.instances(np.zeros((8, 8), np.float32), threshold=1.5)
    with pytest.raises(unetcore.ArgumentError, match="min_size"):
        unetcore.instances(np.zeros((8, 8), np.float32), min_size=-1)
    with pytest.raises(unetcore.ShapeError, match=r"instances: probabilities must be a map \(H, W\) or a stack"):
        unetcore.instances(np.zeros((2, 2, 8, 8), np.float32))
    with pytest.raises(unetcore.DTypeError, match="instances: probability map 0 of dtype complex64"):
        unetcore.instances(np.zeros((8, 8), np.complex64))
    with pytest.raises(unetcore.DTypeError, match="evaluate_cells: predicted frame 0 has dtype float32"):
        unetcore.evaluate_cells(np.zeros((8, 8), np.float32), np.zeros((8, 8), np.uint16))
    with pytest.raises(unetcore.ShapeError):
        unetcore.evaluate_cells(np.zeros((8, 8), np.uint16), np.zeros((8, 9), np.uint16))
    with pytest.raises(unetcore.ShapeError, match="2 predicted label image"):
        unetcore.evaluate_cells([np.zeros((8, 8), np.uint16)] * 2, np.zeros((8, 8), np.uint16))
