"""unetcore: U-Net segmentation of microscopy images, from Python.

A NumPy front end to libunetcore, the C++/CUDA library of this repository. The network runs in
the library (on the CPU, or on a GPU in a CUDA build); images and results cross as NumPy arrays,
without copies where the layout allows.

Segment an EM image with the shipped model::

    import unetcore
    image = unetcore.example_image()               # ISBI 2012 test slice 00, uint8 (512, 512)
    p = unetcore.segment(image)                    # float32 (512, 512): probability of "cell"
    cells = p > 0.5

Your own images: ``unetcore.read_image("x.png")``, ``unetcore.read_stack("stack.tif")`` or any
NumPy array (uint8/16/32 are scaled to [0, 1] by their maximum, floats are taken as they are). A
stack ``(N, H, W)`` gives ``(N, H, W)``. ``unetcore.load_model(...)`` keeps a model for many
calls; ``unetcore.evaluate(p, truth)`` gives the challenge's measures. See docs/guide.md.
"""
from __future__ import annotations

import functools
import json
import pathlib
import sys
import warnings
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Union

import numpy as np

from . import _core
from ._core import (
    ArgumentError,
    CancelledError,
    CudaError,
    DeviceError,
    DTypeError,
    Error,
    FileError,
    KernelError,
    NumericError,
    OutOfMemoryError,
    ShapeError,
    build_info,
    default_device,
    devices,
    num_threads,
    read_image,
    read_stack,
    set_num_threads,
    to_grey,
    write_tiff,
)

__all__ = [
    "Model", "load_model", "segment", "instances", "choose_instance_options", "train", "evaluate", "evaluate_cells", "available_models", "example_image", "DEFAULT_MODEL",
    "read_image", "read_stack", "write_tiff", "to_grey", "devices", "default_device", "num_threads", "set_num_threads",
    "build_info", "Error", "ShapeError", "DTypeError", "ArgumentError", "DeviceError", "FileError",
    "NumericError", "CudaError", "OutOfMemoryError", "KernelError", "CancelledError",
]

__version__: str = build_info()["version"]

#: The model ``segment`` uses unless told otherwise: a U-Net trained on the ISBI 2012 EM slices.
DEFAULT_MODEL = "isbi2012-em"

_PACKAGE = pathlib.Path(__file__).absolute().parent  # not resolve(): in a build tree __init__.py is a link
_MODEL_DIRS = [str(_PACKAGE / "models")]  # the models a wheel ships; build trees use the source tree's

#: A progress callback: called with (tiles done, tiles in all) before the first tile and after
#: each; returning False stops the call (CancelledError). True prints a progress line to stderr.
Progress = Union[None, bool, Callable[[int, int], Optional[bool]]]
#: A training progress callback: called with (step, step limit, loss) after every step; returning
#: False stops training there. True prints a progress line to stderr.
TrainProgress = Union[None, bool, Callable[[int, int, float], Optional[bool]]]
ArrayLike = Any  # a NumPy array, or anything with __dlpack__ or the buffer protocol


def available_models() -> List[str]:
    """Names of the models ``load_model`` and ``segment`` find by name (``$UNETCORE_MODEL_PATH``
    adds folders of ``<name>.safetensors`` files)."""
    return _core._available_models(_MODEL_DIRS)


class Model:
    """A trained U-Net, loaded from a model file (``load_model``).

    Attributes: ``path`` (the file), ``device`` ('cpu', 'cuda:0'), ``config`` (the network's
    configuration), ``card`` (how it was trained and its validation scores, or None),
    ``metadata`` (all of the file's metadata strings), ``in_channels``, ``num_classes``,
    ``parameter_count``. A model serves one call at a time; calls from several threads queue.
    """

    def __init__(self, core: "_core.Model", training: Optional[Dict[str, Any]] = None) -> None:
        self._core = core
        self._training = training

    @property
    def training(self) -> Optional[Dict[str, Any]]:
        """For a model that ``train`` returned: how the run went — ``steps`` (taken by this call),
        ``last_step`` (the step counter, resumed steps included), ``seconds`` (training time),
        ``stopped_by_time``, ``losses`` (one per step) and ``validation`` (the final scores:
        ``{"model": {"plain": {...}, "tta": {...} | None}, "iterate": ... | None}``, the measures of
        ``evaluate``; None without validation data). None for a loaded model."""
        return self._training

    @property
    def path(self) -> str:
        return self._core.path

    @property
    def device(self) -> str:
        return self._core.device

    @property
    def precision(self) -> str:
        """The convolutions' arithmetic: 'fp32', or on a GPU 'tf32'/'bf16' (tensor cores)."""
        return self._core.precision

    @property
    def in_channels(self) -> int:
        return self._core.in_channels

    @property
    def num_classes(self) -> int:
        return self._core.num_classes

    @property
    def parameter_count(self) -> int:
        return self._core.parameter_count

    @property
    def config(self) -> Dict[str, Any]:
        return json.loads(self._core._config_json)

    @property
    def metadata(self) -> Dict[str, str]:
        return dict(self._core.metadata)

    @property
    def card(self) -> Optional[Dict[str, Any]]:
        text = self._core.metadata.get("unetcore.card")
        return json.loads(text) if text else None

    @property
    def provisional(self) -> bool:
        """True for a placeholder model (trained briefly, for tests and docs)."""
        card = self.card
        return bool(card and card.get("provisional"))

    def segment(self, image: ArrayLike, *, tta: bool = False, tile: int = 0, progress: Progress = None,
                all_classes: bool = False) -> np.ndarray:
        """Class probabilities of an image or a stack, by overlap-tile inference.

        image: one image ``(H, W)`` or a stack ``(N, H, W)`` for a one-channel model
            (``(C, H, W)`` / ``(N, C, H, W)`` for C channels). uint8/uint16/uint32 are divided by
            their maximum, exactly as the ``segment`` program reads files; float arrays are used as
            they are (the model expects [0, 1]). A C-contiguous float32 array is read in place,
            without a copy, while the call runs: do not modify it meanwhile. Objects with
            ``__dlpack__`` (a PyTorch CPU tensor) cross without a copy too.
        tta: average over the 8 flips and rotations (8x the work, usually a little better).
        tile: input tile size (0: the largest valid size up to 572 that the image needs); an
            invalid size raises ShapeError naming the nearest valid ones.
        progress: None, True (print progress to stderr) or a callable ``(done, total)`` over
            tiles, called before the first and after each; returning False stops the call with
            CancelledError. Ctrl-C stops it too (KeyboardInterrupt), at the next tile.
        all_classes: return every class's probability, ``(K, H, W)`` / ``(N, K, H, W)``.

        Returns float32: for a two-class model the foreground ("cell") probability ``(H, W)`` /
        ``(N, H, W)``; for K > 2 classes the K-1 non-background ones ``(K-1, H, W)`` /
        ``(N, K-1, H, W)``. The array is a view into the library's result (no copy; its ``base``
        holds all classes). The GIL is released while the network runs.
        """
        array = _as_array(image, "segment")
        if self.in_channels == 1 and array.ndim == 3 and array.shape[-1] in (3, 4):
            raise ShapeError(f"segment: an array of shape {array.shape} looks like a colour image; the model takes "
                             f"grey images: pass unetcore.to_grey(image) (what the segment program does with "
                             f"colour files), or a stack (N, H, W) of more than 4 pixels' width")
        probs = self._core._segment(array, bool(tta), int(tile), _progress_callback(progress, "segment"))
        if all_classes:
            return probs
        picked = slice(1, None) if self.num_classes > 2 else 1
        return probs[picked] if probs.ndim == 3 else probs[:, picked]

    def instances(self, image: ArrayLike, *, tta: bool = False, tile: int = 0, threshold: Optional[float] = None,
                  min_size: Optional[int] = None, fill_holes: Optional[bool] = None,
                  restore_border: Optional[float] = None, core_threshold: Optional[float] = None,
                  progress: Progress = None) -> np.ndarray:
        """The objects of an image ``(H, W)`` or a stack ``(N, H, W)``: ``segment``, then
        ``unetcore.instances`` with this model's instance options (those ``train_cells`` saved
        with it; the library's defaults otherwise), each argument given replacing its own — what
        ``segment --instances`` writes. Needs a two-class model (background, cell). Returns int32
        labels of the image's shape: 0 = background, objects 1..n in raster order."""
        if self.num_classes != 2:
            raise ArgumentError(f"instances: needs a two-class model (background, cell); {self.path} has "
                                f"{self.num_classes} classes")
        options = _core._instance_options(self._core.metadata, threshold, min_size, fill_holes, restore_border,
                                          core_threshold)
        return _instance_labels(self.segment(image, tta=tta, tile=tile, progress=progress), options)

    @property
    def instance_options(self) -> Dict[str, Any]:
        """The options ``instances`` uses unless told otherwise: threshold, min_size, fill_holes,
        restore_border, core_threshold (and connectivity), from the model file or the library's defaults."""
        return json.loads(_core._instance_options(self._core.metadata, None, None, None, None, None)._json())

    def save(self, path: Union[str, "pathlib.Path"], metadata: Optional[Mapping[str, str]] = None) -> None:
        """Writes the weights and configuration (safetensors; no training state) to ``path``, with
        this model's metadata (its card) updated by ``metadata``. ``segment --model path`` and
        ``load_model(path)`` read it."""
        self._core._save(str(path), dict(metadata or {}))

    def __repr__(self) -> str:
        c = self.config
        note = ", PROVISIONAL" if self.provisional else ""
        return (f"<unetcore.Model {pathlib.Path(self.path).name}: base {c['base_channels']}, depth {c['depth']}, "
                f"{self.num_classes} classes, on {self.device}{note}>")


def load_model(name_or_path: Union[str, "pathlib.Path"] = DEFAULT_MODEL, device: str = "auto",
               precision: str = "auto") -> Model:
    """Loads a model: a file written by ``train_em``/``export_model``/``Model.save``, or the name
    of a shipped model (``available_models()``). device: 'auto' (the first GPU if this build
    runs on one, else the CPU), 'cpu', 'cuda', 'cuda:N'. precision: the convolutions'
    arithmetic, 'auto' (tf32 on a GPU, fp32 on the CPU, as the programs' --precision), 'fp32',
    'tf32' or 'bf16' (GPU only)."""
    model = Model(_core.Model._open(str(name_or_path), device, _MODEL_DIRS, precision))
    if model.provisional:
        warnings.warn(f"{model.path} is a provisional model (trained briefly, for tests and docs): "
                      f"{model.card.get('summary', '')}", stacklevel=2)
    return model


@functools.lru_cache(maxsize=4)
def _cached_model(path: str, device: str, precision: str) -> Model:
    return load_model(path, device, precision)


def segment(image: ArrayLike, model: Union[str, "pathlib.Path", Model] = DEFAULT_MODEL, *, tta: bool = False,
            tile: int = 0, device: str = "auto", precision: str = "auto", progress: Progress = None,
            all_classes: bool = False) -> np.ndarray:
    """Segments an image ``(H, W)`` or a stack ``(N, H, W)``; returns the probability of the
    foreground class, float32 of the same shape. See ``Model.segment`` for the arguments.

    model: a Model, a model file or the name of a shipped model (default: isbi2012-em, trained on
    ISBI 2012 EM slices). Named and file models are loaded once per device and precision and kept
    (the last 4); device and precision as for ``load_model``.
    """
    if not isinstance(model, Model):
        model = _cached_model(_core._find_model(str(model), _MODEL_DIRS), device, precision)
    elif device not in ("auto", model.device):
        raise DeviceError(f"segment: the model is on {model.device}; load it with device='{device}' "
                          f"(unetcore.load_model(path, device='{device}'))")
    return model.segment(image, tta=tta, tile=tile, progress=progress, all_classes=all_classes)


def instances(probabilities: ArrayLike, *, threshold: Optional[float] = None, min_size: Optional[int] = None,
              fill_holes: Optional[bool] = None, restore_border: Optional[float] = None,
              core_threshold: Optional[float] = None) -> np.ndarray:
    """Object instances of a probability map ``(H, W)`` or a stack of them ``(N, H, W)``, exactly
    as ``segment --instances`` computes the masks it writes: foreground = probability >
    threshold, its 4-connected components (or, with core_threshold, the components of probability >
    core_threshold grown into the foreground, most probable pixels first, so that a bridge of
    middling probability does not merge two cells), objects under min_size pixels removed, holes filled
    (background enclosed by one object joins it), separation borders up to 2 x restore_border
    wide given back to the nearest object, then ids 1..n in raster order.

    probabilities: float in [0, 1] (what ``segment`` returns) or uint8/16/32 (scaled by their
        maximum). threshold: in [0, 1), default 0.5; min_size: pixels, default 0 (keep all);
        fill_holes: default False; restore_border: pixels, default 0 (off); core_threshold: 0 (off)
        or in (threshold, 1), default 0. For a model's own
        options (a model trained by ``train_cells`` carries them) use ``Model.instances``.

    Returns int32 labels of the same shape: 0 = background, 1..n the objects (the program's
    16-bit masks hold the same values).
    """
    options = _core._instance_options({}, threshold, min_size, fill_holes, restore_border, core_threshold)
    return _instance_labels(probabilities, options)


def choose_instance_options(probabilities: Union[ArrayLike, Sequence[ArrayLike]],
                            truth: Union[ArrayLike, Sequence[ArrayLike]], *,
                            thresholds: Optional[Sequence[float]] = None,
                            core_thresholds: Optional[Sequence[float]] = None, min_size: Optional[int] = None,
                            fill_holes: Optional[bool] = None, restore_border: Optional[float] = None,
                            partial: Optional[Sequence[bool]] = None) -> Dict[str, Any]:
    """The threshold and core threshold of ``instances`` that give the best SEG on frames whose
    objects are known — what ``train_cells`` does with its training frames after training.

    probabilities: maps ``(H, W)``, a stack ``(N, H, W)`` or a list (what ``segment`` returns);
        truth: their instance labels (0 = background), the same shapes.
    thresholds, core_thresholds: the values tried (every pair; a core threshold not above a
        threshold is skipped with it; 0 = plain components). Default: train_cells' grid
        (thresholds 0.5, 0.4, 0.6, 0.3, 0.7, 0.2, 0.8, 0.9; cores 0, 0.8, 0.9, 0.95, 0.98, 0.99).
        A tie goes to the pair tried first. min_size, fill_holes, restore_border: kept fixed
        (defaults as for ``instances``). partial: frames only partly annotated (left out of the
        pixel IoU; SEG only visits annotated objects).

    Returns a dict: chosen (the options, as ``Model.instance_options``), chosen_on, and trials
    (threshold, core_threshold, seg, iou, objects, matched, predicted for each pair tried); then
    ``instances(p, threshold=c["chosen"]["threshold"], core_threshold=c["chosen"]["core_threshold"])``.
    """
    for name, values in (("thresholds", thresholds), ("core_thresholds", core_thresholds)):
        if values is not None and len(values) == 0:
            raise ArgumentError(f"choose_instance_options: {name} is empty; give at least one value, or None for "
                                f"train_cells' grid")
    maps = _slices(probabilities, "probabilities", "choose_instance_options")
    labels = _slices(truth, "truth", "choose_instance_options")
    base = _core._instance_options({}, None, min_size, fill_holes, restore_border, None)
    as_floats = (lambda v: None if v is None else [float(x) for x in v])
    return json.loads(_core._choose_instance_options(maps, labels, [bool(x) for x in (partial or [])], base,
                                                     as_floats(thresholds), as_floats(core_thresholds)))


def _instance_labels(probabilities: ArrayLike, options: "_core.InstanceOptions") -> np.ndarray:
    array = _as_array(probabilities, "instances")
    if array.ndim not in (2, 3):
        raise ShapeError(f"instances: probabilities must be a map (H, W) or a stack (N, H, W), got shape {array.shape}")
    labels = _core._instances(list(array) if array.ndim == 3 else [array], options)
    return np.stack(labels) if array.ndim == 3 else labels[0]


def evaluate_cells(predicted: Union[ArrayLike, Sequence[ArrayLike]], truth: Union[ArrayLike, Sequence[ArrayLike]], *,
                   names: Optional[Sequence[str]] = None, partial: Optional[Sequence[bool]] = None) -> Dict[str, Any]:
    """The Cell Tracking Challenge's SEG and the pixel IoU of instance labels against their
    ground truth — what ``evaluate --cells`` prints.

    predicted, truth: label images ``(H, W)``, stacks ``(N, H, W)`` or lists of them; integer
        instance ids (0 = background; the pixels of one id need not be connected).
    names: the frames' names (default "0", "1", ...); partial: frames only partly annotated,
        left out of the pooled pixel IoU (SEG only visits annotated objects).

    Returns a dict: seg (the mean Jaccard index over all ground-truth objects, an object counting
    when one predicted object covers more than half of it), iou (foreground pixels, pooled),
    objects, matched, predicted, and frames (the same per frame). docs/measures.md defines them.
    """
    p, t = _slices(predicted, "predicted", "evaluate_cells"), _slices(truth, "truth", "evaluate_cells")
    return json.loads(_core._evaluate_cells(p, t, list(names or []), [bool(x) for x in (partial or [])]))


def train(images: Optional[Union[ArrayLike, Sequence[ArrayLike]]] = None,
          labels: Optional[Union[ArrayLike, Sequence[ArrayLike]]] = None, *,
          data: Optional[Union[str, "pathlib.Path"]] = None, first_val: int = 20,
          val_images: Optional[Union[ArrayLike, Sequence[ArrayLike]]] = None,
          val_labels: Optional[Union[ArrayLike, Sequence[ArrayLike]]] = None,
          out: Optional[Union[str, "pathlib.Path"]] = None, device: str = "auto", precision: str = "auto",
          iterations: int = 0, minutes: Optional[float] = None, base_channels: int = 0, tile: int = 0,
          batch: int = 1, micro_batch: int = 0, seed: int = 1, lr: float = 0.001, warmup: int = 0,
          cooldown: float = 0.0, weight_average: float = 0.998, clip_grad_norm: float = 0.0,
          loss_mean: str = "weights",
          head_init: str = "zero", input_norm: str = "none", dropout: float = 0.5, augment: bool = True,
          tta: bool = True, resume: Optional[Union[str, "pathlib.Path"]] = None, checkpoint_every: int = 500,
          val_every: int = 0, progress: TrainProgress = None) -> Model:
    """Trains a U-Net, exactly as the ``train_em`` program does with the same options and seed
    (the same weights, bit for bit), and returns it ready to ``segment``.

    The data, one of:
      images, labels: training images ``(N, H, W)`` or a list of ``(H, W)`` arrays (uint8/16/32
        scaled by their maximum, floats used as they are, as ``segment`` reads them), and their
        label masks of the same sizes: non-zero = cell interior, 0 = membrane/background, as
        ``train_em`` reads its label files (each mask's 4-connected regions are the cells that
        the paper's border weights separate). val_images, val_labels (optional): slices scored
        at the end (and every ``val_every`` steps) with the measures of ``evaluate``.
      data: a dataset folder laid out like data/isbi2012: ``train/images/`` and ``train/labels/``
        of the same file names (PNG or TIFF; multi-page TIFFs give a slice per page); the slices
        before ``first_val`` (in name order) train, the rest validate — ``train_em --data``.

    out: a folder for the run's files, as ``train_em --out`` writes them: model.safetensors (the
        checkpoint: weights, SGD state to ``resume`` from), log.jsonl, loss.png, metrics.json,
        val/. None writes nothing (``Model.save`` writes the model later).
    The training options are ``train_em``'s flags, with its defaults (``train_em --help`` explains
    each): device ('auto': a GPU when present), precision, iterations (0: 4000 on a GPU, on the
    CPU 100000 bounded by the time budget), minutes (None: 15 on the CPU, none on a GPU; 0: no
    budget), base_channels (0: 64 on a GPU, 16 on the CPU), tile (0: 572 / 316), batch,
    micro_batch, seed, lr, warmup, cooldown, weight_average, clip_grad_norm (0: none),
    loss_mean ('weights' | 'pixels'),
    head_init ('zero' | 'he'), input_norm ('none' | 'data'), dropout, augment (``--no-augment``
    is augment=False), tta (``--no-tta`` is tta=False), resume, checkpoint_every, val_every.

    progress: None, True (a line on stderr) or a callable ``(step, steps, loss)`` called after
        every step (steps: the step limit); returning False stops training after that step and
        returns the model trained so far (``Model.training["stopped_by_request"]``, no final
        validation). Ctrl-C stops it too, after the current step, with
        KeyboardInterrupt (with ``out`` the checkpoint of the steps taken is written first).
        The GIL is released while the network trains.

    Returns the Model (on the training device) holding the weights saved as the run's model —
    the moving average of the SGD iterates unless weight_average=0 —; ``Model.training`` tells
    how the run went and its final validation. Bad shapes, dtypes or options raise the
    library's exceptions (ShapeError, DTypeError, ValueError subclasses) with its messages.
    """
    settings = _core.TrainingSettings()
    settings.out = "" if out is None else str(out)
    settings.device, settings.precision = device, precision
    settings.resume = "" if resume is None else str(resume)
    settings.minutes = -1.0 if minutes is None else minutes
    for name, value in (("iterations", iterations), ("base_channels", base_channels), ("tile", tile),
                        ("batch", batch), ("micro_batch", micro_batch), ("seed", seed), ("lr", lr),
                        ("warmup", warmup), ("cooldown", cooldown), ("weight_average", weight_average),
                        ("clip_grad_norm", clip_grad_norm), ("loss_mean", loss_mean), ("head_init", head_init), ("input_norm", input_norm),
                        ("dropout", dropout), ("augment", augment), ("tta", tta),
                        ("checkpoint_every", checkpoint_every), ("val_every", val_every)):
        try:
            setattr(settings, name, value)
        except TypeError:
            raise TypeError(f"train: {name} must be {type(getattr(settings, name)).__name__}, "
                            f"got {type(value).__name__} {value!r}") from None
    if data is not None and (images is not None or labels is not None):
        raise ArgumentError("train: give either images and labels or a dataset folder (data=), not both")
    if (images is None) != (labels is None) or (val_images is None) != (val_labels is None):
        raise ArgumentError("train: images and labels (and val_images and val_labels) go together")
    core, info = _core._train(settings, _pages(images, "train"), _pages(labels, "train"),
                              _pages(val_images, "train"), _pages(val_labels, "train"),
                              "" if data is None else str(data), int(first_val), _train_callback(progress))
    if progress is True:
        print(file=sys.stderr)  # end the progress line
    if info["validation"] is not None:
        info["validation"] = json.loads(info["validation"])
    return Model(core, info)


def evaluate(probabilities: Union[ArrayLike, Sequence[ArrayLike]], truth: Union[ArrayLike, Sequence[ArrayLike]], *,
             warping: bool = True, thresholds: Optional[Sequence[float]] = None, iou_threshold: float = 0.5,
             names: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """The ISBI 2012 / Cell Tracking Challenge measures of the ``evaluate`` program.

    probabilities: one map ``(H, W)``, a stack ``(N, H, W)`` or a list of maps; float in [0, 1]
        (1 = cell interior) or uint8/uint16 (scaled by their maximum).
    truth: the ground truth in the same arrangement: a binary mask (0 = membrane/background,
        one non-zero value = cell; cells are its 4-connected components) or instance ids.
    warping: compute the warping error (the slow measure). thresholds: where the maps are cut
        (default 0.0, 0.1, ..., 1.0); iou_threshold: the one IoU uses.

    Returns the JSON object ``evaluate`` prints, as a dict: pixel_error, rand_error, vinfo_error,
    vrand_thinned_error and vinfo_thinned_error (the ISBI challenge's final measures),
    warping_error, warping_error_classic, iou, seg, vinfo_error_pooled, best_threshold (per
    measure), slices (the names, when given), pixels, thresholds, per_threshold. docs/guide.md
    says how to read them, docs/measures.md how they are defined.
    """
    maps, labels = _slices(probabilities, "probabilities"), _slices(truth, "truth")
    text = _core._evaluate(maps, labels, bool(warping), [float(t) for t in (thresholds or [])], float(iou_threshold),
                           list(names or []))
    return json.loads(text)


def example_image() -> np.ndarray:
    """ISBI 2012 test slice 00: a 512 x 512 uint8 serial-section EM image (Drosophila ventral
    nerve cord, Cardona et al. 2010), shipped with the package to try ``segment`` on."""
    return read_image(str(_PACKAGE / "data" / "isbi2012-test-00.png"))


# ---- helpers ------------------------------------------------------------------------------------

def _as_array(x: ArrayLike, op: str) -> np.ndarray:
    """A NumPy view of x without copying: DLPack for objects that offer it (a GPU tensor must
    come to the CPU first), the buffer protocol / __array__ otherwise; native byte order."""
    if isinstance(x, np.ndarray):
        array = x
    elif hasattr(x, "__dlpack__"):
        try:
            array = np.from_dlpack(x)
        except (BufferError, RuntimeError, TypeError, ValueError) as e:
            raise DeviceError(f"{op}: cannot read this {type(x).__name__} through DLPack ({e}); "
                              "a tensor on a GPU must be moved to the CPU first (e.g. .cpu())") from e
    else:
        array = np.asarray(x)
    if not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="))
    return array


def _slices(x: Union[ArrayLike, Sequence[ArrayLike]], what: str, op: str = "evaluate") -> List[np.ndarray]:
    if isinstance(x, (list, tuple)):
        return [_as_array(s, op) for s in x]
    array = _as_array(x, op)
    if array.ndim == 3:
        return list(array)
    if array.ndim == 2:
        return [array]
    raise ShapeError(f"{op}: {what} must be a 2-D map, a 3-D stack or a list of 2-D maps, "
                     f"got shape {array.shape}")


def _pages(x: Optional[Union[ArrayLike, Sequence[ArrayLike]]], op: str) -> List[np.ndarray]:
    """A stack (N, H, W[, C]) or a list of images as a list of 2-D/3-D arrays (views, no copies)."""
    if x is None:
        return []
    if isinstance(x, (list, tuple)):
        return [_as_array(page, op) for page in x]
    array = _as_array(x, op)
    if array.ndim == 2:
        return [array]
    return list(array)


def _train_callback(progress: TrainProgress) -> Optional[Callable[[int, int, float], Optional[bool]]]:
    if progress is None or progress is False:
        return None
    if progress is True:
        def show(step: int, steps: int, loss: float) -> None:
            print(f"\rtrain: step {step}/{steps}, loss {loss:.4f}", end="", file=sys.stderr, flush=True)
        return show
    if not callable(progress):
        raise TypeError(f"train: progress must be None, True or a callable (step, steps, loss), "
                        f"got {type(progress).__name__}")
    return progress


def _progress_callback(progress: Progress, op: str) -> Optional[Callable[[int, int], Optional[bool]]]:
    if progress is None or progress is False:
        return None
    if progress is True:
        def show(done: int, total: int) -> None:
            end = "\n" if done == total else ""
            print(f"\r{op}: {done}/{total} tiles", end=end, file=sys.stderr, flush=True)
        return show
    if not callable(progress):
        raise TypeError(f"{op}: progress must be None, True or a callable (done, total), got {type(progress).__name__}")
    return progress
