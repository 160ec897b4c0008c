// tests/test_training_run.cpp — the training front-end (unet/training_run.h) that train_em,
// train_cells and the Python module drive: events in order, validations during and after
// training, the run's files (or none without an output folder), a stop request, resume through
// the front-end equal to the uninterrupted run, NaN propagation, bad options, device choice.
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/philox.h"
#include "test_util.h"
#include "unet/safetensors.h"
#include "unet/training_run.h"
#include "unet/training_settings.h"

using namespace unet;
namespace fs = std::filesystem;

namespace {

// Two 64×64 slices of bright disks on a dark ground, labelled as instances.
std::vector<TrainingSlice> disk_slices() {
  std::vector<TrainingSlice> out;
  for (uint64_t seed : {1, 2}) {
    Sample s;
    s.name = "disks" + std::to_string(seed);
    s.image = make_image(64, 64, 1, SampleFormat::F32);
    s.labels = make_label_image(64, 64);
    for (int k = 0; k < 6; ++k) {
      const float cx = 8 + 48 * philox_uniform01(seed, 2 * k), cy = 8 + 48 * philox_uniform01(seed, 2 * k + 1);
      for (int y = 0; y < 64; ++y)
        for (int x = 0; x < 64; ++x)
          if (std::hypot(x - cx, y - cy) < 7 && s.labels.at(x, y) == 0) {
            s.labels.at(x, y) = k + 1;
            s.image.at(x, y) = 0.8f;
          }
    }
    out.push_back(make_training_slice(s));
  }
  return out;
}

// A validation that records its calls and reports the number of calls as its measure.
class CountingValidation : public Validation {
 public:
  struct Call { bool tta; std::string write_dir; };
  mutable std::vector<Call> calls;
  std::string describe() const override { return "counting"; }
  ValidationReport run(UNet&, bool tta, const std::string& write_dir, const ItemProgress& progress) const override {
    calls.push_back({tta, write_dir});
    if (progress) {
      progress(0, 1, "");
      progress(1, 1, "only");
    }
    const double n = static_cast<double>(calls.size());
    return {{{"calls", n, 0, true}}, nlohmann::json{{"calls", n}}.dump()};
  }
};

UNetConfig tiny() {
  UNetConfig c;
  c.base_channels = 2;
  c.depth = 2;
  c.dropout = 0.0f;
  c.init_seed = 5;
  return c;
}

TrainOptions tiny_options() {
  TrainOptions o;
  o.tile = tiny().geometry().valid_input_at_least(44);
  o.seed = 3;
  return o;
}

std::vector<std::string> lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

}  // namespace

TEST_CASE("plan_training: clip_grad_norm becomes TrainOptions::max_grad_norm", "[training_run]") {
  TrainingSettings settings;
  settings.device = "cpu";
  CHECK(plan_training(settings).options.max_grad_norm == 0.0);  // off unless asked (train_em, the paper)
  settings.clip_grad_norm = 2.5;
  CHECK(plan_training(settings).options.max_grad_norm == 2.5);
}

TEST_CASE("TrainingRun: step events, validations during and after training, the run's files", "[training_run]") {
  const test::TempDir tmp("unet_run");
  auto validation = std::make_shared<CountingValidation>();
  RunOptions run;
  run.out_dir = tmp.file("out");
  run.iterations = 6;
  run.checkpoint_every = 2;
  run.validate_every = 2;
  run.checkpoint_metadata = {{"note", "kept"}};
  TrainOptions options = tiny_options();
  options.weight_average = 0.9;
  TrainingRun r(tiny(), Device::cpu(), disk_slices(), validation, options, run);
  std::vector<int64_t> steps, validated, progress_calls;
  RunObserver obs;
  std::vector<float> norms;
  obs.step = [&](const StepEvent& e) {
    steps.push_back(e.step);
    CHECK(std::isfinite(e.smoothed_loss));
    CHECK(e.seconds >= 0.0);
    norms.push_back(e.grad_norm);
    CHECK(!e.clipped);  // no max_grad_norm
  };
  obs.validation_begins = [&](int64_t s) { validated.push_back(s); };
  obs.validation_progress = [&](int64_t done, int64_t, const std::string&) { progress_calls.push_back(done); };
  const TrainSummary summary = r.train(obs);
  CHECK(steps == std::vector<int64_t>{1, 2, 3, 4, 5, 6});
  // Every 2 steps, but not at the last step (the final validation scores it).
  CHECK(validated == std::vector<int64_t>{2, 4});
  CHECK(progress_calls == std::vector<int64_t>{0, 1, 0, 1});
  CHECK(summary.steps == 6);
  CHECK(summary.last_step == 6);
  CHECK(summary.losses.size() == 6);
  CHECK(!summary.stopped_by_time);
  REQUIRE(validation->calls.size() == 2);
  CHECK(!validation->calls[0].tta);
  CHECK(validation->calls[0].write_dir.empty());

  const FinalValidation final_scores = r.validate(obs);
  // With averaging: the iterate (plain, TTA, nothing written), then the model (plain, TTA written).
  REQUIRE(validation->calls.size() == 6);
  CHECK(validation->calls[2].tta == false);
  CHECK(validation->calls[3].tta == true);
  CHECK(validation->calls[3].write_dir.empty());
  CHECK(validation->calls[4].write_dir.empty());
  CHECK(validation->calls[5].tta == true);
  CHECK(validation->calls[5].write_dir == (fs::path(run.out_dir) / "val").string());
  REQUIRE(final_scores.iterate);
  CHECK(final_scores.model.best().measures[0].value == 6.0);
  CHECK(lines(run.out_dir + "/metrics.json") == std::vector<std::string>{R"({"calls":6.0})"});

  const auto log = lines(run.out_dir + "/log.jsonl");
  REQUIRE(log.size() == 6 + 2 + 4);
  CHECK(nlohmann::json::parse(log[0]).at("step") == 1);
  CHECK(nlohmann::json::parse(log[0]).contains("loss"));
  CHECK(nlohmann::json::parse(log[0]).at("grad_norm") == norms[0]);  // the norm the event had
  CHECK(norms[0] > 0.0f);
  CHECK(!nlohmann::json::parse(log[0]).contains("clipped"));
  CHECK(nlohmann::json::parse(log[2]).at("val").at("calls") == 1.0);
  for (const char* key : {"val_iterate", "val_iterate_tta", "val", "val_tta"})
    CHECK(std::count_if(log.begin(), log.end(), [&](const std::string& l) { return nlohmann::json::parse(l).contains(key); }) >= 1);
  CHECK(fs::file_size(run.out_dir + "/loss.png") > 0);
  const SafetensorsFile ckpt = load_safetensors(r.model_path());
  CHECK(ckpt.metadata.at("note") == "kept");
  CHECK(nlohmann::json::parse(ckpt.metadata.at("unetcore.training")).at("step") == 6);
  CHECK(nlohmann::json::parse(ckpt.metadata.at("unetcore.training")).at("total_steps") == 6);
}

TEST_CASE("TrainingRun: without an output folder nothing is written, a stop request ends training", "[training_run]") {
  const test::TempDir tmp("unet_run");
  struct WorkingFolder {  // anything written relative to the working folder would land in tmp
    fs::path before = fs::current_path();
    explicit WorkingFolder(const fs::path& p) { fs::current_path(p); }
    ~WorkingFolder() { fs::current_path(before); }
  };
  std::optional<WorkingFolder> inside(std::in_place, tmp.path);
  RunOptions run;
  run.iterations = 50;
  run.checkpoint_every = 1;
  TrainingRun r(tiny(), Device::cpu(), disk_slices(), nullptr, tiny_options(), run);
  int calls = 0;
  RunObserver obs;
  obs.stop_requested = [&] { return ++calls == 3; };
  const TrainSummary s = r.train(obs);
  inside.reset();
  CHECK(s.steps == 3);
  CHECK(s.stopped_by_request);
  CHECK(r.model_path().empty());
  CHECK(fs::is_empty(tmp.path));
  CHECK_THROWS_WITH(r.validate(), Catch::Contains("no validation"));
}

TEST_CASE("TrainingRun: a resumed run ends where the uninterrupted one does, bit for bit", "[training_run]") {
  const test::TempDir tmp("unet_run");
  TrainOptions options = tiny_options();
  options.weight_average = 0.8;
  options.cooldown = 0.5;  // the rate depends on the run's length: resuming must keep it
  RunOptions straight;
  straight.out_dir = tmp.file("straight");
  straight.iterations = 6;
  TrainingRun(tiny(), Device::cpu(), disk_slices(), nullptr, options, straight).train();

  RunOptions first = straight;
  first.out_dir = tmp.file("first");
  first.iterations = 6;
  RunObserver stop_at_3;
  int n = 0;
  stop_at_3.stop_requested = [&] { return ++n == 3; };
  TrainingRun(tiny(), Device::cpu(), disk_slices(), nullptr, options, first).train(stop_at_3);
  RunOptions second = straight;
  second.out_dir = tmp.file("second");
  second.resume = first.out_dir + "/model.safetensors";
  TrainingRun resumed(tiny(), Device::cpu(), disk_slices(), nullptr, options, second);
  CHECK(resumed.resumed());
  CHECK(resumed.trainer().steps_done() == 3);
  const TrainSummary s = resumed.train();
  CHECK(s.steps == 3);
  CHECK(lines(second.out_dir + "/log.jsonl").size() == 3);
  const SafetensorsFile a = load_safetensors(straight.out_dir + "/model.safetensors");
  const SafetensorsFile b = load_safetensors(second.out_dir + "/model.safetensors");
  REQUIRE(a.tensors.size() == b.tensors.size());
  for (const auto& [name, t] : a.tensors) {
    INFO(name);
    CHECK(b.at(name).to_vector() == t.to_vector());
  }
}

TEST_CASE("TrainingRun: a run taking over a folder removes what killed writers left half-written there", "[training_run][reliability]") {
  // kill_train found loss.png.tmp-<pid>-<n> left behind: a run killed while drawing its loss curve
  // after its last step, resumed with no step left to train, never wrote loss.png again.
  const test::TempDir tmp("unet_run_stale");
  RunOptions first;
  first.out_dir = tmp.file("out");
  first.iterations = 2;
  TrainingRun(tiny(), Device::cpu(), disk_slices(), nullptr, tiny_options(), first).train();
  const pid_t dead = ::fork();
  if (dead == 0) ::_exit(0);
  ::waitpid(dead, nullptr, 0);
  const fs::path out = first.out_dir;
  const std::string by_dead = ".tmp-" + std::to_string(dead) + "-", by_me = ".tmp-" + std::to_string(::getpid()) + "-";
  const std::vector<fs::path> stale = {out / ("loss.png" + by_dead + "17"), out / ("metrics.json" + by_dead + "4"),
                                       out / "val" / ("00.tif" + by_dead + "0")};
  const std::vector<fs::path> kept = {out / ("loss.png" + by_me + "9"),  // a live writer's (this process's)
                                      out / "notes.tmp-draft", out / ("a" + by_dead + "x")};  // not temporaries
  for (const auto& p : stale) std::ofstream(p) << "half a file";
  for (const auto& p : kept) std::ofstream(p) << "keep";
  RunOptions again = first;
  again.resume = (out / "model.safetensors").string();
  TrainingRun resumed(tiny(), Device::cpu(), disk_slices(), nullptr, tiny_options(), again);
  CHECK(resumed.train().steps == 0);  // nothing left to train: no loss curve is drawn
  for (const auto& p : stale) CHECK_FALSE(fs::exists(p));
  for (const auto& p : kept) CHECK(fs::exists(p));
}

TEST_CASE("TrainingRun: a NaN loss propagates, bad options are refused, devices and defaults", "[training_run][errors]") {
  auto poisoned = disk_slices();
  for (auto& s : poisoned) s.image.fill(NAN);
  RunOptions run;
  run.iterations = 3;
  TrainOptions options = tiny_options();
  options.augment = false;
  TrainingRun r(tiny(), Device::cpu(), poisoned, nullptr, options, run);
  CHECK_THROWS_AS(r.train(), NumericError);

  RunOptions bad = run;
  bad.iterations = 0;
  CHECK_THROWS_WITH(TrainingRun(tiny(), Device::cpu(), disk_slices(), nullptr, tiny_options(), bad),
                    Catch::Contains("iterations"));
  bad = run;
  bad.minutes = -1;
  CHECK_THROWS_AS(TrainingRun(tiny(), Device::cpu(), disk_slices(), nullptr, tiny_options(), bad), ValueError);
  bad = run;
  bad.validate_every = -2;
  CHECK_THROWS_AS(TrainingRun(tiny(), Device::cpu(), disk_slices(), nullptr, tiny_options(), bad), ValueError);

  const DeviceChoice cpu = choose_device("cpu");
  CHECK(cpu.device.is_cpu());
  CHECK(!cpu.paper_configuration);
  CHECK(cpu.reason == "requested with --device");
  CHECK_THROWS_AS(choose_device("tpu"), Error);
  CHECK(run_defaults(false).minutes == 15.0);
  CHECK(run_defaults(false).tile == 316);
  CHECK(run_defaults(true).base_channels == 64);
  CHECK(run_defaults(true).minutes == 0.0);
  CHECK(mean_pixel_weight(disk_slices()) > 1.0);  // class-balanced mean 1 plus the border term
  CHECK_THROWS_AS(mean_pixel_weight({}), ValueError);
}
