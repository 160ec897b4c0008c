// tests/fuzz/fuzz_model_config.cpp — the model configuration a checkpoint carries in its metadata
// (unetcore.model), as text: UNetConfig::from_json accepts it or throws ValueError naming the
// field; an accepted one survives to_json -> from_json unchanged and has a parameter count.
// (A whole checkpoint with such a configuration is fuzz_safetensors' work.) Seeds:
// corpus/model_config.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/error.h"
#include "unet/model.h"

using namespace unet;

extern "C" int LLVMFuzzerInitialize(int*, char***) { return 0; }

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  UNetConfig c;
  try {
    c = UNetConfig::from_json(text);
  } catch (const ValueError&) {
    return 0;
  }
  const UNetConfig again = UNetConfig::from_json(c.to_json());
  if (again.to_json() != c.to_json() || c.parameter_count() <= 0) {
    std::fprintf(stderr, "fuzz: %s does not survive a round trip (%s)\n", text.c_str(), again.to_json().c_str());
    std::abort();
  }
  return 0;
}
