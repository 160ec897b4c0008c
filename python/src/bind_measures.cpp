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

std::string evaluate(const std::vector<py::array>& maps, const std::vector<py::array>& truth, bool warping,
                     std::vector<double> thresholds, double iou_threshold, const std::vector<std::string>& names) {
  UNET_CHECK(maps.size() == truth.size(), unet::ShapeError, "evaluate: ", maps.size(), " probability map(s) but ",
             truth.size(), " ground-truth image(s)");
  std::vector<unet::Image> images;
  std::vector<unet::LabelImage> labels;
  for (size_t i = 0; i < maps.size(); ++i) {
    const std::string what = "probability map " + std::to_string(i);
    images.push_back(array_image(maps[i], "evaluate", what.c_str()));
    labels.push_back(label_array(truth[i], "evaluate", ("truth slice " + std::to_string(i)).c_str(),
                                 unet::LabelKind::Auto));
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
