// python/src/bind_training.cpp — unetcore._core._train: a unet::TrainingRun (unet/training_run.h)
// from NumPy arrays or from a dataset folder laid out as train_em reads it, with the settings of
// train_em's flags (unet/training_settings.h: the same resolution, so the same settings train the
// same weights). The run goes without the GIL; after every step a Python callback hears
// (step, steps, loss) and Ctrl-C stops training (the checkpoint of the steps taken is written
// first). The result is a Model holding the weights the run saved as its model (the weight average
// unless weight_average is 0), on the run's device.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "arrays.h"
#include "bindings.h"
#include "core/error.h"
#include "interrupt.h"
#include "model_handle.h"
#include "unet/dataset.h"
#include "unet/model_files.h"
#include "unet/training_run.h"
#include "unet/training_settings.h"
#include "unet/validation.h"

namespace py = pybind11;

namespace unetcore_py {
namespace {

// Images and binary masks (non-zero = cell, read as train_em reads its label files) as samples.
std::vector<unet::Sample> array_samples(const std::vector<py::array>& images, const std::vector<py::array>& labels,
                                        const char* what) {
  UNET_CHECK(images.size() == labels.size(), unet::ShapeError, "train: ", images.size(), " ", what, " images but ",
             labels.size(), " label masks; each image needs its mask");
  std::vector<unet::Sample> samples;
  for (size_t i = 0; i < images.size(); ++i) {
    const std::string name = std::string(what) + " " + std::to_string(i);
    unet::Sample s;
    s.name = name;
    s.image = array_image(images[i], "train", (name + " image").c_str());
    s.labels = unet::labels_from_image(array_image(labels[i], "train", (name + " labels").c_str()),
                                       unet::LabelKind::BinaryMask, name + " labels");
    UNET_CHECK(s.image.width == s.labels.width && s.image.height == s.labels.height, unet::ShapeError, "train: ", name,
               " image is ", s.image.height, " x ", s.image.width, " but its labels are ", s.labels.height, " x ",
               s.labels.width, " (height x width); they must match");
    samples.push_back(std::move(s));
  }
  return samples;
}

// The weights the run saves as its model, copied into a model of their own (the run and its
// trainer go when training ends).
std::unique_ptr<unet::UNet> saved_weights(unet::TrainingRun& run) {
  auto copy = std::make_unique<unet::UNet>(run.model().config(), run.model().device());
  copy->set_precision(run.model().precision());
  const auto scope = run.trainer().averaged_weights();
  std::vector<unet::Tensor> from = run.model().parameters(), to = copy->parameters();
  for (size_t i = 0; i < from.size(); ++i) to[i].copy_from(from[i]);
  return copy;
}

std::string report_json(const unet::ValidationPair& pair) {
  return "{\"plain\": " + pair.plain.json + ", \"tta\": " + (pair.tta ? pair.tta->json : std::string("null")) + "}";
}

// Returns (model, summary dict); summary["validation"] is the final validation as JSON text
// ({"model": {"plain", "tta"}, "iterate": ... or null}) or None without validation data.
py::tuple train(const unet::TrainingSettings& settings, const std::vector<py::array>& images,
                const std::vector<py::array>& labels, const std::vector<py::array>& val_images,
                const std::vector<py::array>& val_labels, const std::string& data, int64_t first_val,
                const py::object& progress) {
  UNET_CHECK(data.empty() != images.empty(), unet::ValueError,
             "train: give either images and labels or a dataset folder (data=), ",
             data.empty() ? "got neither" : "not both");
  UNET_CHECK(data.empty() || val_images.empty(), unet::ValueError,
             "train: with a dataset folder the validation slices are its slices from first_val on; "
             "val_images and val_labels are for arrays");
  std::vector<unet::Sample> train_samples = array_samples(images, labels, "training");
  std::vector<unet::Sample> val_samples = array_samples(val_images, val_labels, "validation");

  Interruptible call(progress);
  auto model = std::make_unique<Model>();
  unet::TrainSummary summary;
  std::string validation_json;
  call.run([&] {
    const unet::TrainingPlan plan = unet::plan_training(settings);
    if (!data.empty()) {
      unet::FolderSplit split = unet::split_folder_dataset(data, first_val);
      train_samples = std::move(split.train);
      val_samples = std::move(split.validation);
    }
    std::vector<unet::TrainingSlice> slices;
    for (const unet::Sample& s : train_samples) slices.push_back(unet::make_training_slice(s));
    unet::UNetConfig config = plan.config;
    unet::standardise_input(settings, slices, config);
    std::shared_ptr<const unet::Validation> validation;
    if (!val_samples.empty()) validation = std::make_shared<unet::IsbiValidation>(std::move(val_samples));
    unet::TrainingRun run(config, plan.device.device, std::move(slices), validation, plan.options, plan.run);

    unet::StepEvent last;
    unet::RunObserver observer;
    observer.step = [&](const unet::StepEvent& e) { last = e; };
    observer.stop_requested = [&] {
      return !call.keep_going(last.step, plan.run.iterations, static_cast<double>(last.loss));
    };
    summary = run.train(observer);
    // Stopped by a request: no final validation; Ctrl-C is re-raised below, a callback's False
    // returns the model trained so far.
    if (validation && !summary.stopped_by_request) {
      const unet::FinalValidation final_scores = run.validate();
      validation_json = "{\"model\": " + report_json(final_scores.model) + ", \"iterate\": " +
                        (final_scores.iterate ? report_json(*final_scores.iterate) : std::string("null")) + "}";
    }
    if (!run.model_path().empty()) {  // the file the run wrote, as load_model would open it
      unet::ModelFile file = unet::open_model(run.model_path(), plan.device.device);
      file.model->set_precision(plan.run.precision);
      model->path = file.path;
      model->metadata = std::move(file.metadata);
      model->net = std::move(file.model);
    } else {
      model->net = saved_weights(run);
    }
  });
  call.rethrow_python_error();  // Ctrl-C (KeyboardInterrupt) or what the callback raised
  py::dict info;
  info["steps"] = summary.steps;
  info["last_step"] = summary.last_step;
  info["seconds"] = summary.seconds;
  info["stopped_by_time"] = summary.stopped_by_time;
  info["stopped_by_request"] = summary.stopped_by_request;
  info["losses"] = summary.losses;
  info["validation"] = validation_json.empty() ? py::object(py::none()) : py::object(py::str(validation_json));
  return py::make_tuple(py::cast(std::move(model)), info);
}

}  // namespace

void bind_training(py::module_& m) {
  using S = unet::TrainingSettings;
  py::class_<S>(m, "TrainingSettings", "train_em's flags (unet/training_settings.h); see unetcore.train.")
      .def(py::init<>())
      .def_readwrite("out", &S::out)
      .def_readwrite("device", &S::device)
      .def_readwrite("precision", &S::precision)
      .def_readwrite("resume", &S::resume)
      .def_readwrite("iterations", &S::iterations)
      .def_readwrite("base_channels", &S::base_channels)
      .def_readwrite("tile", &S::tile)
      .def_readwrite("minutes", &S::minutes)
      .def_readwrite("batch", &S::batch)
      .def_readwrite("micro_batch", &S::micro_batch)
      .def_readwrite("warmup", &S::warmup)
      .def_readwrite("checkpoint_every", &S::checkpoint_every)
      .def_readwrite("val_every", &S::val_every)
      .def_readwrite("seed", &S::seed)
      .def_readwrite("lr", &S::lr)
      .def_readwrite("dropout", &S::dropout)
      .def_readwrite("cooldown", &S::cooldown)
      .def_readwrite("weight_average", &S::weight_average)
      .def_readwrite("clip_grad_norm", &S::clip_grad_norm)
      .def_readwrite("loss_mean", &S::loss_mean)
      .def_readwrite("head_init", &S::head_init)
      .def_readwrite("input_norm", &S::input_norm)
      .def_readwrite("augment", &S::augment)
      .def_readwrite("tta", &S::tta);
  m.def("_train", &train, py::arg("settings"), py::arg("images"), py::arg("labels"), py::arg("val_images"),
        py::arg("val_labels"), py::arg("data"), py::arg("first_val"), py::arg("progress"));
}

}  // namespace unetcore_py
