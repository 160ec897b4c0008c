# python/tests/test_train.py — training from Python: the same weights as the train_em program for
# the same seed and options (bit for bit, from a dataset folder and from arrays), the model it
# returns (the saved weights, ready to segment), stopping (a callback's False, Ctrl-C), the GIL
# released, and the library's refusals as Python exceptions.
import json
import os
import shutil
import signal
import struct

import numpy as np
import pytest

import unetcore
from unetcore import _core
from conftest import STACK, STACK_LABELS

# A run small enough for a test, exercising every part of a real one: base 2 channels, the
# smallest valid tile (188 -> 4), 3 steps with augmentation, dropout and weight averaging, a
# final validation without the 8-fold averaging. The data: ISBI slices 20-22 (160 x 192) as a
# dataset folder, the first two train, the third validates.
OPTIONS = dict(device="cpu", base_channels=2, tile=188, iterations=3, minutes=0, seed=7, checkpoint_every=0)
FLAGS = ["--device", "cpu", "--base-channels", "2", "--tile", "188", "--iterations", "3", "--minutes", "0",
         "--seed", "7", "--checkpoint-every", "0", "--no-tta", "--first-val", "2"]


def tensors(path):
    """name -> (dtype, shape, raw bytes) of a safetensors file (its 8-byte header length, JSON header, data)."""
    with open(path, "rb") as f:
        blob = f.read()
    (header_len,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + header_len])
    data = blob[8 + header_len:]
    return {name: (t["dtype"], tuple(t["shape"]), data[t["data_offsets"][0]:t["data_offsets"][1]])
            for name, t in header.items() if name != "__metadata__"}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("stack-set")
    for kind, source in (("images", STACK), ("labels", STACK_LABELS)):
        (root / "train" / kind).mkdir(parents=True)
        shutil.copy(source, root / "train" / kind / source.name)
    return root


@pytest.fixture(scope="module")
def by_program(dataset, tmp_path_factory):
    """train_em's files for the test's run; skips without the programs (UNETCORE_BIN)."""
    bin_dir = os.environ.get("UNETCORE_BIN")
    if not bin_dir:
        pytest.skip("UNETCORE_BIN is not set (CTest sets it to the build's examples/)")
    out = tmp_path_factory.mktemp("train_em")
    import subprocess
    done = subprocess.run([os.path.join(bin_dir, "train_em"), "--data", str(dataset), "--out", str(out), *FLAGS],
                          capture_output=True, text=True)
    assert done.returncode == 0, f"train_em failed:\n{done.stdout}\n{done.stderr}"
    return out


def assert_same_tensors(a, b):
    ta, tb = tensors(a), tensors(b)
    # weights, SGD iterate and momentum: the whole training state
    assert len(ta) > 20 and sorted(ta) == sorted(tb)
    for name in ta:
        assert ta[name] == tb[name], f"{name} differs"


def test_a_folder_run_equals_train_em_bit_for_bit(dataset, by_program, tmp_path):
    model = unetcore.train(data=dataset, first_val=2, out=tmp_path, tta=False, **OPTIONS)
    assert_same_tensors(tmp_path / "model.safetensors", by_program / "model.safetensors")
    # the same final validation, written the same way
    assert json.loads((tmp_path / "metrics.json").read_text()) == json.loads((by_program / "metrics.json").read_text())
    t = model.training
    assert t["steps"] == 3 and t["last_step"] == 3 and len(t["losses"]) == 3 and not t["stopped_by_request"]
    assert t["validation"]["model"]["tta"] is None
    assert t["validation"]["model"]["plain"] == json.loads((tmp_path / "metrics.json").read_text())
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [e["loss"] for e in log if "loss" in e] == pytest.approx(t["losses"], rel=1e-6)


def test_an_array_run_equals_train_em_bit_for_bit(by_program, tmp_path):
    images, labels = unetcore.read_stack(str(STACK)), unetcore.read_stack(str(STACK_LABELS))
    assert images.shape == labels.shape == (3, 160, 192)
    model = unetcore.train(images[:2], labels[:2], val_images=images[2:], val_labels=labels[2:], out=tmp_path,
                           tta=False, **OPTIONS)
    assert_same_tensors(tmp_path / "model.safetensors", by_program / "model.safetensors")
    # the returned model is the saved one, ready at once
    assert model.path == str(tmp_path / "model.safetensors")
    assert np.array_equal(model.segment(images[2]), unetcore.load_model(model.path, device="cpu").segment(images[2]))


def test_without_a_folder_the_model_holds_the_weight_average(tmp_path):
    images, labels = unetcore.read_stack(str(STACK)), unetcore.read_stack(str(STACK_LABELS))
    kept = unetcore.train(list(images[:2]), list(labels[:2]), **OPTIONS)
    assert kept.path == "" and kept.training["validation"] is None
    saved = unetcore.train(images[:2], labels[:2], out=tmp_path, **OPTIONS)
    # the in-memory model is the averaged weights the run saves (not the last SGD iterate)
    assert np.array_equal(kept.segment(images[2]), saved.segment(images[2]))
    kept.save(tmp_path / "kept.safetensors")
    again = unetcore.load_model(tmp_path / "kept.safetensors", device="cpu")
    assert np.array_equal(again.segment(images[2]), saved.segment(images[2]))
    iterate = unetcore.train(images[:2], labels[:2], **{**OPTIONS, "weight_average": 0.0})
    assert not np.array_equal(iterate.segment(images[2]), kept.segment(images[2]))


def test_progress_hears_every_step_and_false_stops_with_the_model_so_far():
    images, labels = unetcore.read_stack(str(STACK)), unetcore.read_stack(str(STACK_LABELS))
    heard = []

    def stop_after_two(step, steps, loss):
        heard.append((step, steps, loss))
        return step < 2
    _core._gil_probe(reset=True)
    model = unetcore.train(images[:2], labels[:2], progress=stop_after_two, **{**OPTIONS, "iterations": 5})
    assert [(s, n) for s, n, _ in heard] == [(1, 5), (2, 5)]
    assert all(np.isfinite(loss) and loss > 0 for _, _, loss in heard)
    assert [loss for _, _, loss in heard] == pytest.approx(model.training["losses"], rel=1e-6)
    assert model.training["steps"] == 2 and model.training["stopped_by_request"]
    assert model.segment(images[2]).shape == (160, 192)
    checks, held = _core._gil_probe()
    assert checks == 2 and held == 0  # every step ran without the GIL


def test_ctrl_c_stops_after_the_step_and_leaves_the_checkpoint(tmp_path):
    images, labels = unetcore.read_stack(str(STACK)), unetcore.read_stack(str(STACK_LABELS))

    def interrupt_at_two(step, steps, loss):
        if step == 2:
            os.kill(os.getpid(), signal.SIGINT)  # as Ctrl-C does
    with pytest.raises(KeyboardInterrupt):
        unetcore.train(images[:2], labels[:2], out=tmp_path, progress=interrupt_at_two, **{**OPTIONS, "iterations": 50})
    assert (tmp_path / "model.safetensors").exists()
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert max(e["step"] for e in log) == 2


def test_refusals_carry_the_library_messages(tmp_path):
    images, labels = unetcore.read_stack(str(STACK)), unetcore.read_stack(str(STACK_LABELS))
    with pytest.raises(unetcore.DTypeError, match="training 0 image of dtype complex64 is not supported"):
        unetcore.train(images[:1].astype(np.complex64), labels[:1], **OPTIONS)
    with pytest.raises(unetcore.ShapeError, match=r"training 0 image must be \(H, W\) or \(H, W, C\)"):
        unetcore.train(images[:1, None, :, :5].repeat(5, axis=1), labels[:1], **OPTIONS)
    with pytest.raises(unetcore.ShapeError, match=r"training 0 image is 160 x 192 but its labels are 160 x 191"):
        unetcore.train(images[:1], labels[:1, :, :191], **OPTIONS)
    with pytest.raises(unetcore.ShapeError, match="2 training images but 1 label masks"):
        unetcore.train(images[:2], labels[:1], **OPTIONS)
    with pytest.raises(unetcore.ShapeError, match="Trainer: slice 'training 0'"):  # colour for a grey model
        unetcore.train(np.repeat(images[:1, :, :, None], 3, axis=3), labels[:1], **OPTIONS)
    with pytest.raises(unetcore.ArgumentError, match="loss_mean must be 'weights' or 'pixels', got 'mean'"):
        unetcore.train(images[:1], labels[:1], **{**OPTIONS, "loss_mean": "mean"})
    with pytest.raises(unetcore.ArgumentError, match=r"UNetConfig: dropout must be in \[0, 1\), got 1.5"):
        unetcore.train(images[:1], labels[:1], **{**OPTIONS, "dropout": 1.5})
    with pytest.raises(unetcore.ArgumentError, match="Trainer: batch must be >= 1, got 0"):
        unetcore.train(images[:1], labels[:1], **{**OPTIONS, "batch": 0})
    with pytest.raises(unetcore.ShapeError, match="tile"):
        unetcore.train(images[:1], labels[:1], **{**OPTIONS, "tile": 190})
    with pytest.raises(TypeError, match="train: iterations must be int, got str 'many'"):
        unetcore.train(images[:1], labels[:1], **{**OPTIONS, "iterations": "many"})
    with pytest.raises(unetcore.ArgumentError, match="not both"):
        unetcore.train(images[:1], labels[:1], data=tmp_path, **OPTIONS)
    with pytest.raises(unetcore.ArgumentError, match="go together"):
        unetcore.train(images[:1], **OPTIONS)
    with pytest.raises(unetcore.ArgumentError, match="got neither"):
        unetcore.train(**OPTIONS)
    with pytest.raises(unetcore.FileError):
        unetcore.train(data=tmp_path / "missing", **OPTIONS)
    with pytest.raises(TypeError, match="progress must be None, True or a callable"):
        unetcore.train(images[:1], labels[:1], progress=3, **OPTIONS)


def test_clip_grad_norm_clips_every_step_and_is_refused_when_negative(tmp_path):
    images, labels = unetcore.read_stack(str(STACK)), unetcore.read_stack(str(STACK_LABELS))
    unetcore.train(images[:2], labels[:2], out=tmp_path, **{**OPTIONS, "clip_grad_norm": 1e-6})
    steps = [json.loads(line) for line in open(tmp_path / "log.jsonl") if '"loss"' in line]
    assert len(steps) == 3
    assert all(s["clipped"] and s["grad_norm"] > 1e-6 for s in steps)  # every norm is above so tiny a limit
    with pytest.raises(unetcore.ArgumentError, match="max_grad_norm"):
        unetcore.train(images[:1], labels[:1], **{**OPTIONS, "clip_grad_norm": -1.0})
