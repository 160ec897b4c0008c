// tests/test_safetensors.cpp — checkpoint round trip (bit-exact), metadata, device tensors,
// atomic write, and corrupt files rejected with a clear IOError.
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "test_util.h"
#include "unet/safetensors.h"

using namespace unet;
namespace fs = std::filesystem;

namespace {
}  // namespace

TEST_CASE("safetensors round trip keeps names, shapes, dtypes, bits and metadata", "[safetensors]") {
  const test::TempDir tmp("unet_safetensors");
  const auto path = tmp.file("roundtrip.safetensors");
  Tensor w = test::random_tensor(Shape{4, 3, 3, 3}, 1);
  Tensor b = test::random_tensor(Shape{4}, 2, test::cuda_device());
  Tensor step = Tensor::from_vector(std::vector<int32_t>{17}, Shape{1});
  save_safetensors(path, {{"conv.weight", w}, {"conv.bias", b}, {"step", step}},
                   {{"config", "{\"depth\": 4}"}, {"format", "pt"}});
  CHECK_FALSE(fs::exists(path + ".tmp-" + std::to_string(::getpid())));
  const SafetensorsFile f = load_safetensors(path);
  REQUIRE(f.tensors.size() == 3);
  CHECK(f.tensors[0].first == "conv.weight");
  CHECK(f.at("conv.weight").shape() == w.shape());
  CHECK(f.at("conv.weight").to_vector() == w.to_vector());
  CHECK(f.at("conv.bias").to_vector() == b.to_vector());
  CHECK(f.at("step").to_int_vector() == std::vector<int32_t>{17});
  CHECK(f.metadata.at("config") == "{\"depth\": 4}");
  CHECK_THROWS_AS(f.at("missing"), ValueError);
  CHECK(f.find("missing") == nullptr);
  REQUIRE(f.find("conv.bias") != nullptr);
  CHECK(f.find("conv.bias")->to_vector() == b.to_vector());
  // Layout per the format: 8-byte length, JSON header, data aligned to 8 bytes.
  std::ifstream in(path, std::ios::binary);
  uint64_t n = 0;
  in.read(reinterpret_cast<char*>(&n), 8);
  CHECK(n % 8 == 0);
  CHECK(fs::file_size(path) == 8 + n + (108 + 4 + 1) * 4);
}

TEST_CASE("corrupt or truncated safetensors files give an IOError naming the file", "[safetensors][errors]") {
  const test::TempDir tmp("unet_safetensors");
  const auto good = tmp.file("good.safetensors");
  save_safetensors(good, {{"x", test::random_tensor(Shape{10}, 3)}});
  std::ifstream in(good, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto bad = tmp.file("bad.safetensors");
  auto write = [&](const std::string& content) {
    std::ofstream out(bad, std::ios::binary | std::ios::trunc);
    out << content;
  };
  for (size_t cut : {size_t{0}, size_t{4}, size_t{12}, bytes.size() - 1}) {
    write(bytes.substr(0, cut));
    CHECK_THROWS_AS(load_safetensors(bad), IOError);
  }
  std::string garbled = bytes;
  garbled[8] = '#';  // the opening brace of the JSON header
  write(garbled);
  CHECK_THROWS_AS(load_safetensors(bad), IOError);
  CHECK_THROWS_WITH(load_safetensors(bad), Catch::Contains("bad.safetensors"));
  CHECK_THROWS_AS(load_safetensors(tmp.file("does-not-exist")), IOError);
  CHECK_THROWS_AS(save_safetensors(good, {{"a", Tensor::zeros(Shape{1})}, {"a", Tensor::zeros(Shape{1})}}), ValueError);
  CHECK_THROWS_AS(save_safetensors("/nonexistent-dir/x.safetensors", {{"a", Tensor::zeros(Shape{1})}}), IOError);
}
