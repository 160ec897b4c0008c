// core/shape.cpp — Shape validation and printing.
#include "core/shape.h"

#include <sstream>

#include "core/error.h"

namespace unet {

Shape::Shape(std::initializer_list<int64_t> dims) : Shape(std::vector<int64_t>(dims)) {}

Shape::Shape(const std::vector<int64_t>& dims) {
  UNET_CHECK(dims.size() <= kMaxRank, ShapeError, "a shape has at most ", kMaxRank,
             " dimensions, got ", dims.size());
  rank_ = static_cast<int>(dims.size());
  for (int i = 0; i < rank_; ++i) dims_[i] = dims[i];
  validate();
}

void Shape::validate() const {
  for (int i = 0; i < rank_; ++i)
    UNET_CHECK(dims_[i] >= 0, ShapeError, "shape ", str(), " has a negative dimension");
}

int64_t Shape::operator[](int axis) const {
  const int a = axis < 0 ? axis + rank_ : axis;
  UNET_CHECK(a >= 0 && a < rank_, ShapeError, "axis ", axis, " is out of range for shape ", str());
  return dims_[a];
}

int64_t Shape::numel() const {
  int64_t n = 1;
  for (int i = 0; i < rank_; ++i) n *= dims_[i];
  return n;
}

std::string Shape::str() const {
  std::ostringstream s;
  s << "[";
  for (int i = 0; i < rank_; ++i) s << (i ? ", " : "") << dims_[i];
  s << "]";
  return s.str();
}

}  // namespace unet
