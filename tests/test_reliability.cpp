// tests/test_reliability.cpp — the library's guarantees under failure (docs/reliability.md):
// out-of-memory errors that say what was asked and what is held, a memory limit that makes them
// testable, atomic and durable file writes that leave the previous file intact when a disk is
// full or a folder unwritable, and readers that refuse what a file cannot hold before allocating.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/allocator.h"
#include "core/error.h"
#include "core/tensor.h"
#include "unet/atomic_file.h"
#include "unet/image_io.h"
#include "unet/model.h"
#include "unet/safetensors.h"
#include "unet/trainer.h"
#include "test_util.h"

namespace fs = std::filesystem;
using namespace unet;

namespace {

// Sets a device type's memory limit for a scope.
struct MemoryLimitGuard {
  DeviceType type;
  size_t saved;
  MemoryLimitGuard(DeviceType t, size_t bytes) : type(t), saved(memory_limit(t)) { set_memory_limit(t, bytes); }
  ~MemoryLimitGuard() { set_memory_limit(type, saved); }
};

std::string slurp(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void dump(const std::string& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << bytes;
}

// Names in `dir` that look like a writer's temporary file.
int temporaries_in(const fs::path& dir) {
  int n = 0;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().find(".tmp-") != std::string::npos) ++n;
  return n;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

}  // namespace

// ---- out of memory -------------------------------------------------------------------------------

TEST_CASE("memory limit: an allocation past it throws OutOfMemoryError naming the request, the use, the peak and the limit",
          "[reliability][allocator]") {
  for (const Device device : {Device::cpu(), unet::test::cuda_device()}) {
    INFO(device.str());
    cpu_empty_cache();
    cuda_empty_cache();
    const MemoryStats before = device.is_cpu() ? cpu_memory_stats() : cuda_memory_stats();
    const MemoryLimitGuard guard(device.type, before.bytes_in_use + (size_t{1} << 20));
    {
      const Tensor fits = Tensor::empty(Shape{128 * 1024}, DType::Float32, device);  // 512 KiB
      const std::string what = error_of([&] { Tensor::empty(Shape{512 * 1024}, DType::Float32, device); });
      CHECK_THAT(what, Catch::Contains("2.0 MiB (2097152 bytes) were asked for"));
      CHECK_THAT(what, Catch::Contains("passes the memory limit"));
      CHECK_THAT(what, Catch::Contains("tensors hold") && Catch::Contains("peak"));
      CHECK_THAT(what, Catch::Contains(device.is_cpu() ? "UNET_CPU_MEMORY_LIMIT" : "UNET_CUDA_MEMORY_LIMIT"));
      CHECK_THAT(what, Catch::Contains("float32 tensor of shape [524288]"));
      CHECK_THROWS_AS(Tensor::empty(Shape{512 * 1024}, DType::Float32, device), OutOfMemoryError);
      // Small host blocks count too.
      if (device.is_cpu()) {
        std::vector<Tensor> smalls;
        CHECK_THROWS_AS([&] { for (int i = 0; i < 1000; ++i) smalls.push_back(Tensor::empty(Shape{1000})); }(),
                        OutOfMemoryError);
      }
    }
    // Nothing leaked: the refused requests hold nothing, and the memory is usable again.
    const MemoryStats after = device.is_cpu() ? cpu_memory_stats() : cuda_memory_stats();
    CHECK(after.bytes_in_use == before.bytes_in_use);
    const Tensor again = Tensor::full(Shape{128 * 1024}, 2.0f, device);
    CHECK(again.to_vector()[1000] == 2.0f);
  }
}

TEST_CASE("a request no device can meet throws OutOfMemoryError naming it, and changes nothing", "[reliability][allocator][cuda]") {
  // 2^60 bytes: beyond any host's or GPU's memory, so the system (aligned_alloc) or the driver
  // (cudaMalloc on the GPU build) refuses it; no limit is set.
  for (const Device device : {Device::cpu(), unet::test::cuda_device()}) {
    INFO(device.str());
    const MemoryStats before = device.is_cpu() ? cpu_memory_stats() : cuda_memory_stats();
    const std::string what = error_of([&] { Tensor::empty(Shape{int64_t{1} << 58}, DType::Float32, device); });
    CHECK_THAT(what, Catch::Contains("(1152921504606846976 bytes) were asked for"));
    CHECK_THAT(what, Catch::Contains("tensors hold") && Catch::Contains("peak"));
    CHECK_THAT(what, Catch::Contains("shape [288230376151711744]"));
    const MemoryStats after = device.is_cpu() ? cpu_memory_stats() : cuda_memory_stats();
    CHECK(after.bytes_in_use == before.bytes_in_use);
    CHECK(Tensor::full(Shape{1000}, 1.0f, device).to_vector()[999] == 1.0f);
  }
}

TEST_CASE("memory limit: the cache is given back before an allocation is refused", "[reliability][allocator]") {
  const Device cuda = unet::test::cuda_device();
  cuda_empty_cache();
  const size_t in_use = cuda_memory_stats().bytes_in_use;
  const MemoryLimitGuard guard(DeviceType::CUDA, in_use + (size_t{5} << 20));
  { const Tensor freed = Tensor::empty(Shape{768 * 1024}, DType::Float32, cuda); }  // 3 MiB, cached when freed
  CHECK(cuda_memory_stats().cached_bytes >= (size_t{3} << 20));
  // 4 MiB does not fit the cached 3 MiB block, and 3 + 4 MiB pass the limit: the cache goes first.
  const Tensor big = Tensor::empty(Shape{1024 * 1024}, DType::Float32, cuda);
  CHECK(cuda_memory_stats().cached_bytes == 0);
  CHECK(cuda_memory_stats().bytes_in_use == in_use + (size_t{4} << 20));
}

TEST_CASE("out of memory in a training step leaves the trainer as it was after the last step", "[reliability][allocator][trainer]") {
  const unet::test::TempDir dir("unet_oom_step");
  const Device cuda = unet::test::cuda_device();
  UNetConfig config;
  config.base_channels = 2;
  config.depth = 1;
  UNet model(config, cuda);
  TrainingSlice s;
  s.name = "slice";
  s.image = unet::test::random_tensor(Shape{1, 60, 60}, 3, Device::cpu(), 0.0, 1.0);
  std::vector<int32_t> classes(60 * 60);
  for (size_t i = 0; i < classes.size(); ++i) classes[i] = (i % 60) / 7 % 2;
  s.classes = Tensor::from_vector(classes, Shape{60, 60});
  s.weights = Tensor::full(Shape{60, 60}, 1.0f);
  TrainOptions options;
  options.tile = 44;
  options.weight_average = 0.9;
  Trainer trainer(model, {s}, options);
  trainer.step();
  trainer.step();
  trainer.save_checkpoint(dir.file("before.safetensors"));
  cuda_empty_cache();
  {
    const MemoryLimitGuard guard(DeviceType::CUDA, cuda_memory_stats().bytes_in_use + 4096);
    CHECK_THROWS_AS(trainer.step(), OutOfMemoryError);
  }
  CHECK(trainer.steps_done() == 2);
  trainer.save_checkpoint(dir.file("after.safetensors"));
  CHECK(slurp(dir.file("after.safetensors")) == slurp(dir.file("before.safetensors")));
  // And training goes on as if nothing had happened.
  CHECK(trainer.step().step == 3);
}

TEST_CASE("memory sizes: bytes or K, M, G suffixes, anything else refused", "[reliability][allocator]") {
  CHECK(parse_memory_size("4096", "X") == 4096);
  CHECK(parse_memory_size("512M", "X") == (size_t{512} << 20));
  CHECK(parse_memory_size("2g", "X") == (size_t{2} << 30));
  CHECK(parse_memory_size("0", "X") == 0);
  for (const char* bad : {"", "M", "12X", "-1", "1.5G", "99999999999999999999G"})
    CHECK_THROWS_WITH(parse_memory_size(bad, "UNET_CUDA_MEMORY_LIMIT"), Catch::Contains("UNET_CUDA_MEMORY_LIMIT"));
}

TEST_CASE("host memory statistics count small blocks too", "[reliability][allocator]") {
  const size_t before = cpu_memory_stats().bytes_in_use;
  {
    const Tensor small = Tensor::empty(Shape{1000});  // 4000 B, rounded to 64: 4032
    CHECK(cpu_memory_stats().bytes_in_use == before + 4032);
    CHECK(cpu_memory_stats().peak_bytes >= before + 4032);
  }
  CHECK(cpu_memory_stats().bytes_in_use == before);
}

// ---- atomic, durable writes ---------------------------------------------------------------------

TEST_CASE("atomic files: the new file replaces the old one whole, and nothing else is left", "[reliability][atomic_file]") {
  const unet::test::TempDir dir("unet_atomic");
  const std::string path = dir.file("out.bin");
  write_file_atomically(path, "old contents");
  write_file_atomically(path, "new");
  CHECK(slurp(path) == "new");
  {
    AtomicFile unfinished(path);  // destroyed without commit: a failure in the middle of writing
    unfinished.write("half of a new fi");
    CHECK(fs::exists(unfinished.temporary_path()));
  }
  CHECK(slurp(path) == "new");
  CHECK(temporaries_in(dir.path) == 0);
}

TEST_CASE("atomic files: unwritable places fail with IOError naming the path and errno, changing nothing",
          "[reliability][atomic_file]") {
  const unet::test::TempDir dir("unet_atomic_fail");
  CHECK_THROWS_WITH(write_file_atomically(dir.file("no/such/folder/x.bin"), "x"),
                    Catch::Contains("no/such/folder/x.bin") && Catch::Contains("ENOENT"));
  // A path under a regular file: refused even for root, which permission bits do not stop.
  write_file_atomically(dir.file("plain"), "a file");
  CHECK_THROWS_WITH(write_file_atomically(dir.file("plain/x.bin"), "x"), Catch::Contains("ENOTDIR"));
  if (::geteuid() != 0) {
    const std::string locked = dir.sub("locked");
    write_file_atomically(locked + "/keep.bin", "kept");
    fs::permissions(locked, fs::perms::owner_read | fs::perms::owner_exec);
    CHECK_THROWS_WITH(write_file_atomically(locked + "/keep.bin", "replaced"), Catch::Contains("EACCES"));
    fs::permissions(locked, fs::perms::owner_all);
    CHECK(slurp(locked + "/keep.bin") == "kept");
  }
  CHECK(slurp(dir.file("plain")) == "a file");
}

TEST_CASE("atomic files: a file size limit (EFBIG) fails the write and keeps the previous file", "[reliability][atomic_file]") {
  const unet::test::TempDir dir("unet_atomic_efbig");
  const std::string path = dir.file("checkpoint.bin");
  write_file_atomically(path, "the previous checkpoint");
  const std::string big(100000, 'x');
  // In a child process, so the limit does not touch the test runner: exits 0 if the write failed
  // with an IOError that names EFBIG.
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::signal(SIGXFSZ, SIG_IGN);
    const rlimit limit{50000, 50000};
    ::setrlimit(RLIMIT_FSIZE, &limit);
    try {
      write_file_atomically(path, big);
    } catch (const IOError& e) {
      ::_exit(std::strstr(e.what(), "EFBIG") && std::strstr(e.what(), "checkpoint.bin") ? 0 : 2);
    }
    ::_exit(1);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(slurp(path) == "the previous checkpoint");
  CHECK(temporaries_in(dir.path) == 0);
}

TEST_CASE("atomic files: temporaries of killed writers are removed, those of live ones kept", "[reliability][atomic_file]") {
  const unet::test::TempDir dir("unet_atomic_stale");
  const std::string path = dir.file("model.safetensors");
  const pid_t dead = ::fork();
  if (dead == 0) ::_exit(0);
  ::waitpid(dead, nullptr, 0);
  const std::string dead_tmp = path + ".tmp-" + std::to_string(dead) + "-0";
  const std::string live_tmp = path + ".tmp-" + std::to_string(::getpid()) + "-7";
  const std::string other = dir.file("other.safetensors.tmp-" + std::to_string(dead) + "-0");
  for (const auto& p : {dead_tmp, live_tmp, other}) dump(p, "x");
  remove_stale_temporaries(path);
  CHECK_FALSE(fs::exists(dead_tmp));
  CHECK(fs::exists(live_tmp));
  CHECK(fs::exists(other));  // another file's temporaries are not this call's business
}

TEST_CASE("atomic files: every write of a path removes its killed writers' temporaries (a loss curve too)",
          "[reliability][atomic_file]") {
  // kill_train once found loss.png.tmp-<pid>-<n> left behind: only checkpoint saves cleaned up.
  const unet::test::TempDir dir("unet_atomic_stale_any");
  const pid_t dead = ::fork();
  if (dead == 0) ::_exit(0);
  ::waitpid(dead, nullptr, 0);
  for (const std::string name : {"loss.png", "metrics.json"}) {
    const std::string path = dir.file(name);
    const std::string dead_tmp = path + ".tmp-" + std::to_string(dead) + "-3";
    dump(dead_tmp, "half a file");
    write_file_atomically(path, "complete");
    CHECK_FALSE(fs::exists(dead_tmp));
    CHECK(slurp(path) == "complete");
  }
  // TIFF files (the cells' maskTTT.tif) are written by libtiff into the temporary, outside AtomicFile.
  const std::string tif = dir.file("mask000.tif"), tif_tmp = tif + ".tmp-" + std::to_string(dead) + "-0";
  dump(tif_tmp, "half a file");
  const Image mask = make_image(4, 3, 1, SampleFormat::U16);
  write_tiff(tif, mask);
  CHECK_FALSE(fs::exists(tif_tmp));
  CHECK(temporaries_in(dir.path) == 0);
}

// ---- readers refuse what a file cannot hold, before allocating ------------------------------------

namespace {

// A safetensors file with the given JSON header and `data_bytes` zero bytes of data.
std::string safetensors_bytes(const std::string& header, size_t data_bytes) {
  std::string out(8, '\0');
  const uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  return out + header + std::string(data_bytes, '\0');
}

}  // namespace

TEST_CASE("safetensors: headers that claim more than the file holds are refused before allocating",
          "[reliability][safetensors]") {
  const unet::test::TempDir dir("unet_st_claims");
  const std::string path = dir.file("claim.safetensors");
  // Under a host memory limit of 1 MiB more than in use: a reader that allocated what the header
  // claims would fail with OutOfMemoryError instead of the IOError below.
  cpu_empty_cache();
  const MemoryLimitGuard guard(DeviceType::CPU, cpu_memory_stats().bytes_in_use + (size_t{1} << 20));
  const struct { const char* header; size_t data; const char* says; } cases[] = {
      {R"({"w":{"dtype":"F32","shape":[1000000,1000000],"data_offsets":[0,16]}})", 16, "needs 4000000000000 bytes"},
      {R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,16]}})", 16, "overflows 64 bits"},
      {R"({"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,4000000000000]}})", 16, "outside the file"},
      {R"({"w":{"dtype":"F32","shape":[-2,2],"data_offsets":[0,16]}})", 16, "not a non-negative integer"},
      {R"({"w":{"dtype":"F32","shape":[2.5,2],"data_offsets":[0,16]}})", 16, "not a non-negative integer"},
      {R"({"w":{"dtype":"F32","shape":[1,1,1,1,1],"data_offsets":[0,4]}})", 4, "at most 4"},
      {R"({"w":{"dtype":"F64","shape":[2],"data_offsets":[0,16]}})", 16, "F64"},
      {R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[-8,8]}})", 16, "data_offsets"},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12,
       "without gaps"},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 12, "cover 8 of the file's 12"},
      {R"({"__metadata__":{"k":5},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 8, "not a string"},
      {R"({"__metadata__":[1],"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 8, "not a JSON object"},
      {R"({"a":[1,2]})", 8, "not an object"},
      {R"([1,2])", 8, "not a JSON object"},
  };
  for (const auto& c : cases) {
    INFO(c.header);
    dump(path, safetensors_bytes(c.header, c.data));
    CHECK_THROWS_AS(load_safetensors(path), IOError);
    CHECK_THROWS_WITH(load_safetensors(path), Catch::Contains(path) && Catch::Contains(c.says));
  }
  dump(path, safetensors_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 8));
  CHECK(load_safetensors(path).at("a").numel() == 2);
}

TEST_CASE("images: a header claiming more pixels than the file can decode to is refused before allocating",
          "[reliability][image_io]") {
  const unet::test::TempDir dir("unet_img_claims");
  // A valid 16 x 12 PNG and TIFF, then the same files claiming 30000 x 30000 pixels (9·10^8:
  // within every limit, far past what a few hundred bytes can hold).
  Image small = make_image(16, 12, 1, SampleFormat::U8);
  const std::string png = dir.file("claim.png"), tif = dir.file("claim.tif");
  write_png(png, small);
  write_tiff(tif, small, TiffCompression::None);
  std::string b = slurp(png);
  const unsigned char side[4] = {0, 0, 0x75, 0x30};
  std::memcpy(&b[16], side, 4);
  std::memcpy(&b[20], side, 4);
  dump(png, b);  // (the IHDR CRC no longer matches; stb does not check it)
  CHECK_THROWS_WITH(read_image(png), Catch::Contains(png) && Catch::Contains("compressed data can hold at most"));
  {
    ImageLimits tight;
    tight.max_values = 1000000;
    const ImageLimits saved = image_limits();
    set_image_limits(tight);
    CHECK_THROWS_WITH(read_image(png), Catch::Contains(png) && Catch::Contains("values, more than the limit"));
    set_image_limits(saved);
  }
  // TIFF: patch ImageWidth / ImageLength (tags 256, 257) in the first IFD to 40000 x 20000.
  std::string t = slurp(tif);
  REQUIRE(t[0] == 'I');
  auto u16 = [&](size_t o) { return static_cast<uint32_t>(static_cast<unsigned char>(t[o]) | static_cast<unsigned char>(t[o + 1]) << 8); };
  const size_t ifd = u16(4) | u16(6) << 16;
  for (uint32_t e = 0; e < u16(ifd); ++e) {
    const size_t at = ifd + 2 + 12 * e;
    const uint32_t value = u16(at) == 256 ? 40000 : u16(at) == 257 ? 20000 : 0;
    if (value == 0) continue;
    t[at + 2] = 4;  // type LONG, one value
    t[at + 3] = 0;
    for (int k = 0; k < 4; ++k) t[at + 8 + k] = static_cast<char>(value >> (8 * k));
  }
  dump(tif, t);
  CHECK_THROWS_WITH(read_image(tif), Catch::Contains(tif) && Catch::Contains("decodes to at most"));
  // Sides past the limit are refused whatever the data.
  ImageLimits tight;
  tight.max_side = 8;
  const ImageLimits saved = image_limits();
  set_image_limits(tight);
  write_png(png, small);
  CHECK_THROWS_WITH(read_image(png), Catch::Contains("1 to 8 per side"));
  set_image_limits(saved);
  CHECK(read_image(png).width == 16);
  CHECK_THROWS_AS(set_image_limits(ImageLimits{0, 1, 1}), ValueError);
}

// ---- the model configuration a checkpoint carries --------------------------------------------------

TEST_CASE("model configuration: parameter_count() is the built model's, without building it", "[reliability][model]") {
  CHECK(UNetConfig{}.parameter_count() == 31030658);
  for (int depth : {1, 2, 3})
    for (Padding padding : {Padding::Valid, Padding::Same})
      for (int64_t base : {1, 3, 8}) {
        UNetConfig c;
        c.depth = depth, c.padding = padding, c.base_channels = base, c.in_channels = 2, c.num_classes = 3;
        CHECK(c.parameter_count() == UNet(c, Device::cpu()).parameter_count());
      }
}

TEST_CASE("model configuration: wrong types, ranges and missing fields are refused by name", "[reliability][model]") {
  const struct { const char* text; const char* says; } cases[] = {
      {R"({"in_channels":1,"num_classes":2,"base_channels":64,"depth":4})", "'padding' is missing"},
      {R"({"in_channels":1.5,"num_classes":2,"base_channels":64,"depth":4,"padding":"valid"})", "'in_channels' must be an integer"},
      {R"({"in_channels":1,"num_classes":2,"base_channels":100000,"depth":4,"padding":"valid"})", "'base_channels' must be in 1..4096"},
      {R"({"in_channels":1,"num_classes":2,"base_channels":18446744073709551615,"depth":4,"padding":"valid"})", "'base_channels' must be in"},
      {R"({"in_channels":1,"num_classes":2,"base_channels":64,"depth":9,"padding":"valid"})", "'depth' must be in 1..6"},
      {R"({"in_channels":1,"num_classes":2,"base_channels":64,"depth":4,"padding":"valid","dropout":1e300})", "'dropout' must be a finite float"},
      {R"({"in_channels":1,"num_classes":2,"base_channels":64,"depth":4,"padding":"valid","input_std":"x"})", "'input_std' must be a number"},
      {R"({"in_channels":1,"num_classes":2,"base_channels":64,"depth":4,"padding":"valid","init_seed":-1})", "'init_seed'"},
      {R"([1])", "not a JSON object"},
      {R"({"in_channels":)", "not valid JSON"},
  };
  for (const auto& c : cases) {
    INFO(c.text);
    CHECK_THROWS_AS(UNetConfig::from_json(c.text), ValueError);
    CHECK_THROWS_WITH(UNetConfig::from_json(c.text), Catch::Contains(c.says));
  }
}

TEST_CASE("checkpoints: a configuration the file cannot hold is refused before the model is built", "[reliability][model]") {
  const unet::test::TempDir dir("unet_ckpt_claims");
  const std::string path = dir.file("claims.safetensors");
  UNetConfig huge;
  huge.base_channels = 4096;
  huge.depth = 6;  // about 1.6·10^13 parameters: no memory holds it
  save_safetensors(path, {{"w", Tensor::zeros(Shape{4})}}, {{"unetcore.model", huge.to_json()}});
  CHECK_THROWS_WITH(load_model(path, Device::cpu()),
                    Catch::Contains(path) && Catch::Contains("parameters but the file holds only 4 float values"));
  save_safetensors(path, {{"w", Tensor::zeros(Shape{4})}}, {{"unetcore.model", R"({"depth":"four"})"}});
  CHECK_THROWS_AS(load_model(path, Device::cpu()), IOError);
  CHECK_THROWS_WITH(load_model(path, Device::cpu()), Catch::Contains(path) && Catch::Contains("model configuration"));
  save_safetensors(path, {{"w", Tensor::zeros(Shape{4})}});
  CHECK_THROWS_WITH(load_model(path, Device::cpu()), Catch::Contains("holds no unetcore model configuration"));
}
