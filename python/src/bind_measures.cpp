// python/src/bind_measures.cpp — the challenge measures of `evaluate` (unet/metrics.h) over NumPy
// probability maps and ground truth, returned as the same JSON object `evaluate` prints.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "arrays.h"
#include "bindings.h"
#include "core/error.h"
#include "unet/dataset.h"
#include "unet/metrics.h"

namespace py = pybind11;

namespace unetcore_py {
namespace {

// Ground truth as evaluate reads it from files: a binary mask (any two values, the non-zero one
// is "cell") becomes 4-connected components, anything else is taken as instance ids.
unet::LabelImage truth_labels(const py::array& array, size_t slice) {
  const std::string what = "truth slice " + std::to_string(slice);
  py::array values = array;
  if (array.dtype().kind() == 'b') values = array.attr("astype")("uint8");
  UNET_CHECK(values.dtype().kind() == 'u' || values.dtype().kind() == 'i', unet::DTypeError, "evaluate: ", what,
             " has dtype ", py::str(array.dtype()).cast<std::string>(),
             "; ground truth is an integer label image (instance ids) or a binary mask");
  const auto as64 = py::array_t<int64_t, py::array::c_style | py::array::forcecast>::ensure(values);
  UNET_CHECK(as64.ndim() == 2, unet::ShapeError, "evaluate: ", what, " must be 2-D (H, W), got ", as64.ndim(),
             " dimensions");
  unet::Image image = unet::make_image(static_cast<int>(as64.shape(1)), static_cast<int>(as64.shape(0)), 1,
                                       unet::SampleFormat::U32);
  const int64_t* src = as64.data();
  for (size_t i = 0; i < image.pixels.size(); ++i) {
    // Image holds floats: ids are exact up to 2^24.
    UNET_CHECK(src[i] >= 0 && src[i] <= (int64_t{1} << 24), unet::ValueError, "evaluate: ", what, " holds the id ",
               src[i], "; ids must lie in 0..16777216");
    image.pixels[i] = static_cast<float>(src[i]);
  }
  return unet::labels_from_image(image, unet::LabelKind::Auto, what);
}

std::string evaluate(const std::vector<py::array>& maps, const std::vector<py::array>& truth, bool warping,
                     std::vector<double> thresholds, double iou_threshold, const std::vector<std::string>& names) {
  UNET_CHECK(maps.size() == truth.size(), unet::ShapeError, "evaluate: ", maps.size(), " probability map(s) but ",
             truth.size(), " ground-truth image(s)");
  std::vector<unet::Image> images;
  std::vector<unet::LabelImage> labels;
  for (size_t i = 0; i < maps.size(); ++i) {
    const std::string what = "probability map " + std::to_string(i);
    images.push_back(array_image(maps[i], "evaluate", what.c_str()));
    labels.push_back(truth_labels(truth[i], i));
  }
  unet::EvaluateOptions options;
  options.warping = warping;
  if (!thresholds.empty()) options.thresholds = std::move(thresholds);
  options.iou_threshold = iou_threshold;
  py::gil_scoped_release release;
  const unet::MeasureResult result = unet::evaluate_segmentation(images, labels, options);
  return unet::measures_to_json(result, options, names);
}

}  // namespace

void bind_measures(py::module_& m) {
  m.def("_evaluate", &evaluate, py::arg("maps"), py::arg("truth"), py::arg("warping"), py::arg("thresholds"),
        py::arg("iou_threshold"), py::arg("names"));
}

}  // namespace unetcore_py
