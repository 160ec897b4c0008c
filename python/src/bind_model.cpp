// python/src/bind_model.cpp — unetcore._core.Model: a trained U-Net loaded from a model file (by
// name or path), saved weights-only, and applied to NumPy images and stacks.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "arrays.h"
#include "bindings.h"
#include "core/precision.h"
#include "interrupt.h"
#include "unet/inference.h"
#include "unet/model_files.h"
#include "unet/trainer.h"

namespace py = pybind11;

namespace unetcore_py {
namespace {

struct Model {
  std::string path;
  std::map<std::string, std::string> metadata;
  std::unique_ptr<unet::UNet> net;
  std::mutex busy;  // one call at a time per model (the library's forward pass is not re-entrant)
};

std::unique_ptr<Model> open(const std::string& name_or_path, const std::string& device,
                            const std::vector<std::string>& extra_dirs, const std::string& precision) {
  auto model = std::make_unique<Model>();
  unet::ModelFile file = [&] {
    py::gil_scoped_release release;
    const unet::Device where = unet::resolve_device(device);
    const unet::Precision arithmetic = unet::choose_precision(precision, where);  // checked before loading
    unet::ModelFile f = unet::open_model(name_or_path, where, extra_dirs);
    f.model->set_precision(arithmetic);
    return f;
  }();
  model->path = file.path;
  model->metadata = std::move(file.metadata);
  model->net = std::move(file.model);
  return model;
}

// [K, H, W] or [N, K, H, W] class probabilities, the library's buffer as a NumPy array.
py::array segment(Model& model, const py::array& image, bool tta, int64_t tile, const py::object& progress) {
  const ImageInput in = image_input(image, model.net->config().in_channels, "segment");
  Interruptible call(progress);
  unet::SegmentOptions options{tile, tta, call.callback()};
  const unet::Tensor probs = call.run([&] {
    std::lock_guard<std::mutex> lock(model.busy);  // taken without the GIL: no lock-order deadlock
    return in.stack ? unet::segment_stack(*model.net, in.tensor, options)
                    : unet::segment_image(*model.net, in.tensor, options);
  });
  return tensor_array(probs);
}

void save(Model& model, const std::string& path, const std::map<std::string, std::string>& metadata) {
  std::map<std::string, std::string> all = model.metadata;
  for (const auto& [k, v] : metadata) all[k] = v;
  py::gil_scoped_release release;
  std::lock_guard<std::mutex> lock(model.busy);
  unet::save_model(*model.net, path, all);
}

}  // namespace

void bind_model(py::module_& m) {
  py::class_<Model>(m, "Model", "A trained U-Net (see unetcore.Model).")
      .def_static("_open", &open, py::arg("name_or_path"), py::arg("device"), py::arg("extra_dirs"),
                  py::arg("precision"))
      .def("_segment", &segment, py::arg("image"), py::arg("tta"), py::arg("tile"), py::arg("progress"))
      .def("_save", &save, py::arg("path"), py::arg("metadata"))
      .def_property_readonly("path", [](const Model& m) { return m.path; })
      .def_property_readonly("metadata", [](const Model& m) { return m.metadata; })
      .def_property_readonly("device", [](const Model& m) { return m.net->device().str(); })
      .def_property_readonly("precision", [](const Model& m) { return std::string(unet::precision_name(m.net->precision())); })
      .def_property_readonly("_config_json", [](const Model& m) { return m.net->config().to_json(); })
      .def_property_readonly("in_channels", [](const Model& m) { return m.net->config().in_channels; })
      .def_property_readonly("num_classes", [](const Model& m) { return m.net->config().num_classes; })
      .def_property_readonly("parameter_count", [](const Model& m) { return m.net->parameter_count(); })
      .def("_tile_count", [](const Model& m, int64_t h, int64_t w, bool tta, int64_t tile) {
        return unet::segment_tile_count(m.net->config(), h, w, {tile, tta, {}});
      }, py::arg("height"), py::arg("width"), py::arg("tta"), py::arg("tile"));
  m.def("_available_models", &unet::available_models, py::arg("extra_dirs"));
  m.def("_find_model", &unet::find_model, py::arg("name_or_path"), py::arg("extra_dirs"));
}

}  // namespace unetcore_py
