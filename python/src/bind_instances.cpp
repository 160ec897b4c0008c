// python/src/bind_instances.cpp — objects from probability maps (unet/instances.h: what
// `segment --instances` writes) and the Cell Tracking Challenge's SEG of instance labels against
// their ground truth (unet/cell_metrics.h: what `evaluate --cells` prints), and the instance
// options that score best on frames with ground truth (unet/instance_choice.h: what train_cells
// chooses after training), over NumPy arrays.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "arrays.h"
#include "bindings.h"
#include "core/error.h"
#include "unet/cell_metrics.h"
#include "unet/instance_choice.h"
#include "unet/instances.h"

namespace py = pybind11;

namespace unetcore_py {
namespace {

// The options `segment --instances` would use: the model's (its metadata; none: the defaults),
// then each one given.
unet::InstanceOptions instance_options(const std::map<std::string, std::string>& model_metadata,
                                       std::optional<float> threshold, std::optional<int64_t> min_size,
                                       std::optional<bool> fill_holes, std::optional<float> restore_border,
                                       std::optional<float> core_threshold) {
  unet::InstanceOptions o = unet::InstanceOptions::of_model(model_metadata);
  if (threshold) o.threshold = *threshold;
  if (min_size) o.min_size = *min_size;
  if (fill_holes) o.fill_holes = *fill_holes;
  if (restore_border) o.restore_border = *restore_border;
  if (core_threshold) o.core_threshold = *core_threshold;
  o.validate();
  return o;
}

// One int32 label image (H, W) per map.
std::vector<py::array> instances(const std::vector<py::array>& maps, const unet::InstanceOptions& options) {
  std::vector<unet::Image> images;
  for (size_t i = 0; i < maps.size(); ++i)
    images.push_back(array_image(maps[i], "instances", ("probability map " + std::to_string(i)).c_str()));
  std::vector<unet::LabelImage> labels(images.size());
  {
    py::gil_scoped_release release;
    for (size_t i = 0; i < images.size(); ++i) labels[i] = unet::instances_from_probability(images[i], options);
  }
  std::vector<py::array> out;
  for (const auto& l : labels) out.push_back(label_image_array(l));
  return out;
}

std::string evaluate_cells(const std::vector<py::array>& predicted, const std::vector<py::array>& truth,
                           const std::vector<std::string>& names, const std::vector<bool>& partial) {
  UNET_CHECK(predicted.size() == truth.size(), unet::ShapeError, "evaluate_cells: ", predicted.size(),
             " predicted label image(s) but ", truth.size(), " ground-truth image(s)");
  std::vector<unet::LabelImage> p, t;
  for (size_t i = 0; i < predicted.size(); ++i) {
    p.push_back(label_array(predicted[i], "evaluate_cells", ("predicted frame " + std::to_string(i)).c_str(),
                            unet::LabelKind::Instances));
    t.push_back(label_array(truth[i], "evaluate_cells", ("truth frame " + std::to_string(i)).c_str(),
                            unet::LabelKind::Instances));
  }
  py::gil_scoped_release release;
  return unet::cell_scores_to_json(unet::score_cells(p, t, names, partial));
}

// The choice as JSON (InstanceChoice::to_json). An absent list: InstanceSearch::standard()'s.
std::string choose_instance_options(const std::vector<py::array>& maps, const std::vector<py::array>& truth,
                                    const std::vector<bool>& partial, const unet::InstanceOptions& base,
                                    std::optional<std::vector<float>> thresholds,
                                    std::optional<std::vector<float>> core_thresholds) {
  std::vector<unet::Image> images;
  std::vector<unet::LabelImage> labels;
  for (size_t i = 0; i < maps.size(); ++i)
    images.push_back(array_image(maps[i], "choose_instance_options", ("probability map " + std::to_string(i)).c_str()));
  for (size_t i = 0; i < truth.size(); ++i)
    labels.push_back(label_array(truth[i], "choose_instance_options", ("truth frame " + std::to_string(i)).c_str(),
                                 unet::LabelKind::Instances));
  unet::InstanceSearch search = unet::InstanceSearch::standard();
  if (thresholds) search.thresholds = *thresholds;
  if (core_thresholds) search.core_thresholds = *core_thresholds;
  const std::string frames = std::to_string(maps.size()) + (maps.size() == 1 ? " frame" : " frames");
  py::gil_scoped_release release;
  return unet::choose_instance_options(images, labels, partial, base, search).to_json(frames);
}

}  // namespace

void bind_instances(py::module_& m) {
  py::class_<unet::InstanceOptions>(m, "InstanceOptions", "unet::InstanceOptions (see unetcore.instances).")
      .def_readonly("threshold", &unet::InstanceOptions::threshold)
      .def_readonly("min_size", &unet::InstanceOptions::min_size)
      .def_readonly("fill_holes", &unet::InstanceOptions::fill_holes)
      .def_readonly("restore_border", &unet::InstanceOptions::restore_border)
      .def_readonly("core_threshold", &unet::InstanceOptions::core_threshold)
      .def("_json", &unet::InstanceOptions::to_json);
  m.def("_instance_options", &instance_options, py::arg("model_metadata"), py::arg("threshold"), py::arg("min_size"),
        py::arg("fill_holes"), py::arg("restore_border"), py::arg("core_threshold"));
  m.def("_instances", &instances, py::arg("maps"), py::arg("options"));
  m.def("_choose_instance_options", &choose_instance_options, py::arg("maps"), py::arg("truth"), py::arg("partial"),
        py::arg("base"), py::arg("thresholds"), py::arg("core_thresholds"));
  m.def("_evaluate_cells", &evaluate_cells, py::arg("predicted"), py::arg("truth"), py::arg("names"),
        py::arg("partial"));
}

}  // namespace unetcore_py
