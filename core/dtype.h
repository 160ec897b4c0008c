// core/dtype.h — element types: float32 for everything numeric, int32 for label images.
#pragma once

#include <cstddef>
#include <cstdint>

namespace unet {

enum class DType : uint8_t { Float32, Int32 };

constexpr size_t dtype_size(DType t) { return t == DType::Float32 ? sizeof(float) : sizeof(int32_t); }
constexpr const char* dtype_name(DType t) { return t == DType::Float32 ? "float32" : "int32"; }

template <typename T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::Float32; }
template <> constexpr DType dtype_of<int32_t>() { return DType::Int32; }

}  // namespace unet
