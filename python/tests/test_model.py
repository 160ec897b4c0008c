# python/tests/test_model.py — models: the shipped one by name with its card, saving weights
# only and loading back (same bits), devices, and the helpers around them (I/O, measures).
import json
import warnings

import numpy as np
import pytest

import unetcore
from conftest import STACK, STACK_LABELS


def test_the_shipped_model_loads_by_name_and_says_what_it_is(model):
    assert "isbi2012-em" in unetcore.available_models()
    assert model.path.endswith("isbi2012-em.safetensors")
    assert (model.in_channels, model.num_classes) == (1, 2)
    assert model.config["base_channels"] == 16 and model.config["depth"] == 4
    card = model.card
    for key in ("name", "summary", "provisional", "commit", "seed", "command", "train", "validation", "scores"):
        assert key in card
    assert set(card["scores"]) >= {"pixel_error", "rand_error", "vinfo_error", "iou"}
    assert "isbi2012-em" in repr(model)
    if model.provisional:
        with pytest.warns(UserWarning, match="provisional"):
            unetcore.load_model("isbi2012-em", device="cpu")


def test_save_writes_weights_only_and_loads_back_the_same(model, crop, tmp_path):
    path = tmp_path / "mine.safetensors"
    model.save(path, {"note": "a copy"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = unetcore.load_model(path, device="cpu")
    assert again.metadata["note"] == "a copy"
    assert again.card == model.card  # the card travels with the weights
    assert np.array_equal(again.segment(crop), model.segment(crop))
    header = json.loads(path.read_bytes()[8:8 + int.from_bytes(path.read_bytes()[:8], "little")])
    names = [k for k in header if k != "__metadata__"]
    assert len(names) == 46 and not any(n.startswith(("iterate.", "velocity.")) for n in names)


def test_devices_and_threads():
    names = [d["name"] for d in unetcore.devices()]
    assert names[0] == "cpu"
    info = unetcore.build_info()
    assert info["cuda_backend"] in ("sim", "gpu") and info["version"] == unetcore.__version__
    if info["cuda_backend"] == "sim":
        assert unetcore.default_device() == "cpu"  # auto never picks the simulator
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if "cuda:0" in names:
            assert unetcore.load_model(device="cuda").device == "cuda:0"
        with pytest.raises(unetcore.ArgumentError, match="bad device 'gpu'"):
            unetcore.load_model(device="gpu")
        assert unetcore.load_model(device="cpu").precision == "fp32"
        with pytest.raises(unetcore.ArgumentError, match="fp32 only"):
            unetcore.load_model(device="cpu", precision="tf32")
    saved = unetcore.num_threads()
    unetcore.set_num_threads(1)
    assert unetcore.num_threads() == 1
    unetcore.set_num_threads(saved)


def test_read_stack_and_write_tiff_round_trip(tmp_path):
    stack = unetcore.read_stack(str(STACK))
    assert stack.shape == (3, 160, 192) and stack.dtype == np.uint8
    probabilities = np.linspace(0, 1, 3 * 160 * 192, dtype=np.float32).reshape(3, 160, 192)
    unetcore.write_tiff(str(tmp_path / "p.tif"), probabilities)
    assert np.array_equal(unetcore.read_stack(str(tmp_path / "p.tif")), probabilities)
    unetcore.write_tiff(str(tmp_path / "one.tif"), stack[1])
    assert np.array_equal(unetcore.read_image(str(tmp_path / "one.tif")), stack[1])
    assert unetcore.example_image().shape == (512, 512)


def test_evaluate_matches_the_evaluate_program(model, program, tmp_path):
    p = model.segment(unetcore.read_stack(str(STACK)))
    unetcore.write_tiff(str(tmp_path / "isbi-20-22.tif"), p)
    program("evaluate", "--pred", tmp_path, "--truth", STACK_LABELS.parent, "--json", tmp_path / "e.json")
    from_program = json.loads((tmp_path / "e.json").read_text())
    from_python = unetcore.evaluate(p, unetcore.read_stack(str(STACK_LABELS)),
                                    names=[f"isbi-20-22_p{i}" for i in range(3)])
    assert from_python == from_program
    assert from_python["slices"] == ["isbi-20-22_p0", "isbi-20-22_p1", "isbi-20-22_p2"]


def test_evaluate_perfect_and_refused_inputs():
    truth = unetcore.read_stack(str(STACK_LABELS))
    perfect = unetcore.evaluate(list(truth.astype(np.float32) / 255), list(truth), warping=False)
    assert perfect["pixel_error"] == 0 and perfect["rand_error"] == 0 and perfect["iou"] == 1
    with pytest.raises(unetcore.ShapeError, match="3 probability map.*2 ground-truth"):
        unetcore.evaluate(truth.astype(np.float32), truth[:2])
    with pytest.raises(unetcore.DTypeError):
        unetcore.evaluate(truth.astype(np.float32), truth.astype(np.float32))
