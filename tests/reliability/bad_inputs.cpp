// tests/reliability/bad_inputs.cpp — every example program against every kind of bad input, as a
// table (CTest bad_inputs; docs/reliability.md).
//
//   bad_inputs BIN_DIR WORK_DIR FAIL_IO_LIBRARY
//
// Each row runs one program with wrong flags, missing or corrupt files, images of the wrong size,
// a checkpoint of another architecture, a learning rate that makes the loss NaN, too little
// memory, or a disk that fails (full, over the file size limit, read-only, failing to flush) —
// faults injected with tests/reliability/fail_io.cpp, and on a real full or read-only filesystem
// where this process may mount one. Every row checks the same promises (examples/program.h):
//   - the exit status says the kind of failure (1 command line, 2 input/environment, 3 diverged,
//     4 out of memory), never 0 and never a crash;
//   - stderr holds exactly one line, "<program>: error: ...", saying what was wrong (the row
//     names a phrase it must contain);
//   - nothing is half-written in the output folder: no temporary file is left, every file that
//     was there before is unchanged (the previous checkpoint above all), and nothing new appears
//     but what the row allows (a finished log line, an empty folder).
// Prints one line per row and the totals; exits non-zero naming every row that broke a promise.
#include <fcntl.h>
#include <sched.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "unet/image_io.h"
#include "unet/model.h"
#include "unet/trainer.h"

extern char** environ;
namespace fs = std::filesystem;
using namespace unet;

namespace {

fs::path bin, work, fail_io;

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void dump(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << bytes;
}

struct Result {
  int status = -1;  // exit status, or 128 + signal
  std::string out, err;
};

Result run(const std::vector<std::string>& args, const std::vector<std::string>& env) {
  std::vector<std::string> environment;
  for (char** e = environ; *e; ++e) environment.emplace_back(*e);
  environment.insert(environment.end(), env.begin(), env.end());
  std::vector<char*> argv, envp;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const auto& e : environment) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  const fs::path out = work / "stdout.txt", err = work / "stderr.txt";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = 0;
  Result r;
  if (posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), envp.data()) != 0) {
    r.err = "cannot start " + args[0];
    return r;
  }
  posix_spawn_file_actions_destroy(&actions);
  int status = 0;
  waitpid(pid, &status, 0);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

// path (relative to the folder) -> contents, of every file under a folder ("" for folders).
std::map<std::string, std::string> snapshot(const fs::path& dir) {
  std::map<std::string, std::string> files;
  if (!fs::is_directory(dir)) return files;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    files[fs::relative(e.path(), dir).string()] = e.is_regular_file() ? slurp(e.path()) : "";
  return files;
}

struct Row {
  std::string name;
  std::string program;
  std::vector<std::string> args;     // "{out}" and "{work}" are replaced
  int status;                        // the expected exit status
  std::string says;                  // a phrase the error line must contain
  std::vector<std::string> env = {};
  std::vector<std::string> may_appear = {};  // new entries the row allows in the output folder ("dir/": all below)
  std::function<void(const fs::path& out)> setup = nullptr;
  std::vector<std::string> wrapper = {};  // e.g. a shell that sets a limit first
  fs::path folder = {};                   // the output folder, if not a fresh one under WORK/out
};

std::string expand(std::string s, const fs::path& out) {
  for (const auto& [key, value] : {std::pair<std::string, std::string>{"{out}", out.string()}, {"{work}", work.string()}})
    for (size_t at = s.find(key); at != std::string::npos; at = s.find(key)) s.replace(at, key.size(), value);
  return s;
}

int rows_run = 0;
std::vector<std::string> broken;

void check(const Row& row) {
  const fs::path out = row.folder.empty() ? work / "out" / row.name : row.folder;
  if (row.folder.empty()) {
    fs::remove_all(out);
    fs::create_directories(out);
  }
  if (row.setup) row.setup(out);
  const auto before = snapshot(out);
  std::vector<std::string> args = row.wrapper;
  args.push_back((bin / row.program).string());
  for (const auto& a : row.args) args.push_back(expand(a, out));
  std::vector<std::string> env;
  for (const auto& e : row.env) env.push_back(expand(e, out));
  const Result r = run(args, env);
  ++rows_run;

  std::vector<std::string> problems;
  if (r.status != row.status)
    problems.push_back("exit status " + std::to_string(r.status) + ", expected " + std::to_string(row.status));
  const bool one_line = !r.err.empty() && r.err.back() == '\n' && r.err.find('\n') == r.err.size() - 1;
  if (!one_line) problems.push_back("stderr is not exactly one line");
  if (r.err.rfind(row.program + ": error: ", 0) != 0) problems.push_back("stderr does not start with '" + row.program + ": error: '");
  if (r.err.find(row.says) == std::string::npos) problems.push_back("stderr does not say '" + row.says + "'");
  const auto after = snapshot(out);
  for (const auto& [path, contents] : after) {
    if (path.find(".tmp-") != std::string::npos) problems.push_back("temporary file left: " + path);
    const auto was = before.find(path);
    if (was == before.end()) {
      bool allowed = false;
      for (const auto& a : row.may_appear) allowed = allowed || path == a || (a.ends_with('/') && path.starts_with(a));
      if (!allowed) problems.push_back("new file in the output folder: " + path);
    } else if (was->second != contents && std::find(row.may_appear.begin(), row.may_appear.end(), path) == row.may_appear.end()) {
      problems.push_back("changed: " + path);
    }
  }
  for (const auto& [path, contents] : before)
    if (!after.count(path)) problems.push_back("removed: " + path);

  std::string err = r.err;
  if (!err.empty() && err.back() == '\n') err.pop_back();
  std::printf("%-4s %-34s exit %d  %s\n", problems.empty() ? "ok" : "FAIL", row.name.c_str(), r.status, err.c_str());
  for (const auto& p : problems) std::printf("       %s\n", p.c_str());
  if (!problems.empty()) broken.push_back(row.name);
}

// Where this process may mount (root in most containers): a private mount namespace, so the
// test's filesystems are nobody else's business and vanish with it.
bool private_mounts() {
  return unshare(CLONE_NEWNS) == 0 && mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s BIN_DIR WORK_DIR FAIL_IO_LIBRARY\n", argv[0]);
    return 2;
  }
  bin = argv[1];
  work = fs::absolute(argv[2]);
  fail_io = fs::absolute(argv[3]);
  fs::remove_all(work);
  fs::create_directories(work);

  // ---- inputs ------------------------------------------------------------------------------------
  const fs::path isbi = fs::path(UNET_SOURCE_DIR) / "data" / "isbi2012" / "train";
  for (const char* part : {"images", "labels"}) {
    fs::create_directories(work / "data" / "train" / part);
    fs::create_directories(work / "bad_sizes" / "train" / part);
    for (const char* slice : {"00.png", "01.png", "02.png"}) {
      fs::copy_file(isbi / part / slice, work / "data" / "train" / part / slice);
      fs::copy_file(isbi / part / slice, work / "bad_sizes" / "train" / part / slice);
    }
  }
  Image label = read_image((isbi / "labels" / "01.png").string());
  Image half = make_image(label.width / 2, label.height / 2, 1, label.format);
  for (int y = 0; y < half.height; ++y)
    for (int x = 0; x < half.width; ++x) half.at(x, y) = label.at(x, y);
  write_png((work / "bad_sizes" / "train" / "labels" / "01.png").string(), half);
  fs::create_directories(work / "corrupt" / "train" / "images");
  fs::copy(work / "data" / "train", work / "corrupt" / "train", fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  const std::string png = slurp(isbi / "labels" / "01.png");
  dump(work / "corrupt" / "train" / "labels" / "01.png", png.substr(0, png.size() / 3));
  dump(work / "not_an_image.png", "this is text, not a PNG\n");
  dump(work / "plain_file", "a file where a folder is expected\n");
  write_png((work / "small.png").string(), half);
  fs::create_directories(work / "pred_small");
  write_tiff((work / "pred_small" / "02.tif").string(), normalised(half));
  fs::create_directories(work / "no_images");
  dump(work / "no_images" / "readme.txt", "nothing to segment\n");

  // train_em on the tiny configuration; `more` adds flags or replaces the value of one already there.
  const std::vector<std::string> tiny = {"--data", "{work}/data", "--first-val", "2", "--device", "cpu",
                                         "--base-channels", "2", "--tile", "188", "--threads", "2",
                                         "--minutes", "0", "--no-tta"};
  auto with = [](std::vector<std::string> a, const std::vector<std::string>& more) {
    for (size_t i = 0; i < more.size(); ++i) {
      const bool has_value = i + 1 < more.size() && !more[i + 1].starts_with("--");
      const auto it = std::find(a.begin(), a.end(), more[i]);
      if (it != a.end() && has_value && it + 1 != a.end()) {
        *(it + 1) = more[i + 1];
      } else {
        a.push_back(more[i]);
        if (has_value) a.push_back(more[i + 1]);
      }
      if (has_value) ++i;
    }
    return a;
  };
  {  // a trained tiny checkpoint, and one of another architecture
    std::vector<std::string> args = {(bin / "train_em").string()};
    for (const auto& a : with(tiny, {"--iterations", "2", "--checkpoint-every", "1", "--out", "{work}/tiny"}))
      args.push_back(expand(a, work));
    const Result r = run(args, {});
    if (r.status != 0) {
      std::fprintf(stderr, "bad_inputs: could not train the tiny checkpoint: %s\n", r.err.c_str());
      return 1;
    }
    UNetConfig other;
    other.base_channels = 3;
    other.depth = 2;
    UNet model(other, Device::cpu());
    save_model(model, (work / "other_architecture.safetensors").string());
    const std::string ckpt = slurp(work / "tiny" / "model.safetensors");
    dump(work / "truncated.safetensors", ckpt.substr(0, ckpt.size() / 2));
    fs::create_directories(work / "pred_01");
    fs::copy_file(work / "tiny" / "val" / "02.tif", work / "pred_01" / "01.tif");
    fs::create_directories(work / "truth_00");
    fs::copy_file(isbi / "labels" / "00.png", work / "truth_00" / "00.png");
  }
  {  // a generated Cell Tracking Challenge data set for train_cells
    const Result r = run({UNET_MAKE_SYNTHETIC_CTC, (work / "ctc").string()}, {});
    if (r.status != 0) {
      std::fprintf(stderr, "bad_inputs: could not generate the cell data: %s\n", r.err.c_str());
      return 1;
    }
  }
  const std::vector<std::string> tiny_cells = {"--data", "{work}/ctc", "--device", "cpu", "--base-channels", "2",
                                               "--tile", "188", "--threads", "2", "--minutes", "0", "--no-tta",
                                               "--iterations", "2", "--checkpoint-every", "1"};
  const std::string ckpt = (work / "tiny" / "model.safetensors").string();
  const auto previous_checkpoint = [&](const fs::path& out) { fs::copy_file(ckpt, out / "model.safetensors"); };
  const std::vector<std::string> resume = {"--out", "{out}", "--resume", "{out}/model.safetensors", "--iterations", "4",
                                           "--checkpoint-every", "1"};
  const std::vector<std::string> fresh_log = {"log.jsonl", "val"};
  const std::string preload = "LD_PRELOAD=" + fail_io.string();

  std::vector<Row> rows = {
      // ---- train_em ----
      {"train_em unknown flag", "train_em", {"--bogus"}, 1, "--bogus"},
      {"train_em flag without value", "train_em", {"--lr"}, 1, "--lr"},
      {"train_em invalid tile", "train_em", with(tiny, {"--out", "{out}", "--tile", "190"}), 2, "188"},
      {"train_em missing data", "train_em", {"--data", "{work}/nowhere", "--out", "{out}"}, 2, "does not exist"},
      {"train_em label of another size", "train_em", with(tiny, {"--data", "{work}/bad_sizes", "--out", "{out}"}), 2,
       "sizes differ"},
      {"train_em corrupt label", "train_em", with(tiny, {"--data", "{work}/corrupt", "--out", "{out}"}), 2, "01.png"},
      {"train_em missing checkpoint", "train_em", with(tiny, {"--out", "{out}", "--resume", "{work}/none.safetensors"}), 2,
       "none.safetensors"},
      {"train_em truncated checkpoint", "train_em", with(tiny, {"--out", "{out}", "--resume", "{work}/truncated.safetensors"}),
       2, "truncated.safetensors"},
      {"train_em other architecture", "train_em",
       with(tiny, {"--out", "{out}", "--resume", "{work}/other_architecture.safetensors"}), 2, "was trained with model"},
      {"train_em NaN learning rate", "train_em", with(tiny, {"--out", "{out}", "--iterations", "5", "--lr", "1e30"}), 3,
       "may be too high", {}, fresh_log},
      {"train_em NaN after a checkpoint", "train_em", with(with(tiny, resume), {"--lr", "1e30", "--checkpoint-every", "100"}),
       3, "the last good checkpoint is", {}, fresh_log, previous_checkpoint},
      {"train_em output under a file", "train_em", with(tiny, {"--out", "{work}/plain_file/out"}), 2, "Not a directory"},
      {"train_em no such CUDA device", "train_em", with(tiny, {"--out", "{out}", "--device", "cuda:3"}), 2, "CUDA device 3"},
      {"train_em no validation slice", "train_em", with(tiny, {"--out", "{out}", "--first-val", "3"}), 2, "--first-val"},
      {"train_em out of device memory", "train_em", with(tiny, {"--out", "{out}", "--device", "cuda"}), 4,
       "memory limit", {"UNET_CUDA_MEMORY_LIMIT=1M"}},
      // 7 MiB: the two training slices on the device take 6 MiB and the model 0.8 MiB, so the
      // first step's activations do not fit; the checkpoint the run resumed from is the last good one.
      {"train_em out of memory in a step", "train_em", with(with(tiny, resume), {"--device", "cuda"}), 4,
       "the last good checkpoint is", {"UNET_CUDA_MEMORY_LIMIT=7M"}, fresh_log, previous_checkpoint},
      {"train_em bad memory limit", "train_em", with(tiny, {"--out", "{out}"}), 2, "not a memory size",
       {"UNET_CPU_MEMORY_LIMIT=lots"}},
      {"train_em disk full", "train_em", with(tiny, resume), 2, "ENOSPC",
       {preload, "UNET_FAIL_IO=write:ENOSPC:100000", "UNET_FAIL_IO_PATH=model.safetensors"}, fresh_log, previous_checkpoint},
      {"train_em quota exceeded", "train_em", with(tiny, resume), 2, "EDQUOT",
       {preload, "UNET_FAIL_IO=write:EDQUOT", "UNET_FAIL_IO_PATH=model.safetensors"}, fresh_log, previous_checkpoint},
      {"train_em read-only folder", "train_em", with(tiny, resume), 2, "EROFS",
       {preload, "UNET_FAIL_IO=open:EROFS", "UNET_FAIL_IO_PATH={out}"}, fresh_log, previous_checkpoint},
      {"train_em flush fails", "train_em", with(tiny, resume), 2, "EIO",
       {preload, "UNET_FAIL_IO=fsync:EIO", "UNET_FAIL_IO_PATH=model.safetensors"}, fresh_log, previous_checkpoint},
      {"train_em rename refused", "train_em", with(tiny, resume), 2, "EACCES",
       {preload, "UNET_FAIL_IO=rename:EACCES", "UNET_FAIL_IO_PATH=model.safetensors"}, fresh_log, previous_checkpoint},
      {"train_em file size limit", "train_em", with(tiny, resume), 2, "EFBIG", {}, fresh_log, previous_checkpoint,
       {"/bin/sh", "-c", "ulimit -f 200 && exec \"$@\"", "sh"}},
      // ---- train_cells (the same front-end as train_em: examples/training_cli.h) ----
      {"train_cells unknown flag", "train_cells", with(tiny_cells, {"--out", "{out}", "--bogus"}), 1, "--bogus"},
      {"train_cells missing data", "train_cells", with(tiny_cells, {"--data", "{work}/nowhere", "--out", "{out}"}), 2,
       "nowhere"},
      {"train_cells other architecture", "train_cells",
       with(tiny_cells, {"--out", "{out}", "--resume", "{work}/other_architecture.safetensors"}), 2, "was trained with model"},
      {"train_cells NaN learning rate", "train_cells", with(tiny_cells, {"--out", "{out}", "--lr", "1e30", "--iterations", "5",
       "--checkpoint-every", "100"}), 3, "may be too high", {}, {"log.jsonl", "val", "targets", "targets/"}},
      {"train_cells disk full", "train_cells", with(tiny_cells, {"--out", "{out}"}), 2, "ENOSPC",
       {preload, "UNET_FAIL_IO=write:ENOSPC:100000", "UNET_FAIL_IO_PATH=model.safetensors"},
       {"log.jsonl", "val", "targets", "targets/"}},
      // ---- segment ----
      {"segment no input", "segment", {"--out", "{out}"}, 1, "--input"},
      {"segment unknown model name", "segment", {"--model", "no-such-model", "--input", "{work}/small.png", "--out", "{out}"},
       2, "no-such-model"},
      {"segment missing model", "segment", {"--model", "{work}/none.safetensors", "--input", "{work}/small.png", "--out", "{out}"},
       2, "none.safetensors"},
      {"segment truncated model", "segment",
       {"--model", "{work}/truncated.safetensors", "--input", "{work}/small.png", "--out", "{out}"}, 2, "truncated.safetensors"},
      {"segment image as model", "segment", {"--model", "{work}/small.png", "--input", "{work}/small.png", "--out", "{out}"}, 2,
       "small.png"},
      {"segment missing image", "segment", {"--model", ckpt, "--input", "{work}/none.png", "--out", "{out}"}, 2, "none.png"},
      {"segment not an image", "segment", {"--model", ckpt, "--input", "{work}/not_an_image.png", "--out", "{out}"}, 2,
       "not_an_image.png"},
      {"segment folder without images", "segment", {"--model", ckpt, "--input", "{work}/no_images", "--out", "{out}"}, 2,
       "no image files"},
      {"segment invalid tile", "segment", {"--model", ckpt, "--input", "{work}/small.png", "--out", "{out}", "--tile", "190"},
       2, "188"},
      {"segment output under a file", "segment",
       {"--model", ckpt, "--input", "{work}/small.png", "--out", "{work}/plain_file/out"}, 2, "Not a directory"},
      {"segment disk full", "segment", {"--model", ckpt, "--input", "{work}/small.png", "--out", "{out}"}, 2, "ENOSPC",
       {preload, "UNET_FAIL_IO=write:ENOSPC:1000", "UNET_FAIL_IO_PATH={out}"}},
      // ---- evaluate ----
      {"evaluate unknown flag", "evaluate", {"--pred", "{work}", "--truth", "{work}", "--bogus"}, 1, "--bogus"},
      {"evaluate missing predictions", "evaluate", {"--pred", "{work}/nowhere", "--truth", "{work}/data/train/labels"}, 2,
       "nowhere"},
      {"evaluate sizes differ", "evaluate", {"--pred", "{work}/pred_small", "--truth", "{work}/data/train/labels"}, 2,
       "02.tif"},
      {"evaluate no matching names", "evaluate", {"--pred", "{work}/pred_small", "--truth", "{work}/truth_00"}, 2,
       "no prediction"},
      {"evaluate corrupt truth", "evaluate", {"--pred", "{work}/pred_01", "--truth", "{work}/corrupt/train/labels"}, 2,
       "01.png"},
      {"evaluate json under a file", "evaluate",
       {"--pred", "{work}/tiny/val", "--truth", "{work}/data/train/labels", "--json", "{work}/plain_file/e.json", "--no-warping"},
       2, "ENOTDIR"},
      // ---- data_demo ----
      {"data_demo slice out of range", "data_demo", {"--data", "{work}/data/train", "--slice", "99", "--out", "{out}"}, 2,
       "out of range"},
      {"data_demo missing data", "data_demo", {"--data", "{work}/nowhere", "--out", "{out}"}, 2, "nowhere"},
      {"data_demo tile too small", "data_demo", {"--data", "{work}/data/train", "--tile", "5", "--out", "{out}"}, 1, "--tile"},
      {"data_demo output under a file", "data_demo", {"--data", "{work}/data/train", "--out", "{work}/plain_file/o"}, 2,
       "Not a directory"},
      // ---- export_model ----
      {"export_model missing checkpoint", "export_model", {"--checkpoint", "{work}/none.safetensors", "--out", "{out}/m.safetensors"},
       2, "none.safetensors"},
      {"export_model card not JSON", "export_model",
       {"--checkpoint", ckpt, "--out", "{out}/m.safetensors", "--card", "{work}/plain_file"}, 2, "JSON object"},
      {"export_model disk full", "export_model", {"--checkpoint", ckpt, "--out", "{out}/m.safetensors"}, 2, "ENOSPC",
       {preload, "UNET_FAIL_IO=write:ENOSPC:1000", "UNET_FAIL_IO_PATH=m.safetensors"}},
      // ---- device_info ----
      {"device_info unknown flag", "device_info", {"--bogus"}, 1, "--bogus"},
  };
  for (const Row& row : rows) check(row);

  // A real full and a real read-only filesystem, where this process may mount them.
  int real_rows = 0;
  if (private_mounts()) {
    const fs::path full = work / "out" / "real_full_disk", ro = work / "out" / "real_read_only";
    fs::create_directories(full);
    fs::create_directories(ro);
    const size_t room = fs::file_size(ckpt) + 64 * 1024;  // the previous checkpoint fits, a second does not
    if (mount("tmpfs", full.c_str(), "tmpfs", 0, ("size=" + std::to_string(room)).c_str()) == 0 &&
        mount("tmpfs", ro.c_str(), "tmpfs", 0, "size=4m") == 0) {
      fs::copy_file(ckpt, full / "model.safetensors");
      fs::copy_file(ckpt, ro / "model.safetensors");
      fs::create_directories(ro / "val");
      if (mount(nullptr, ro.c_str(), nullptr, MS_REMOUNT | MS_RDONLY, nullptr) == 0) {
        check({"train_em real full disk", "train_em", with(tiny, resume), 2, "ENOSPC", {}, fresh_log, nullptr, {}, full});
        check({"train_em real read-only disk", "train_em", with(tiny, resume), 2, "Read-only file system", {}, {}, nullptr,
               {}, ro});
        real_rows = 2;
      }
    }
  }
  std::printf("bad_inputs: %d rows (%d on real full or read-only filesystems%s), %zu broke a promise\n", rows_run,
              real_rows, real_rows ? "" : ": mounting is not permitted here, the injected faults stand in", broken.size());
  return broken.empty() ? 0 : 1;
}
