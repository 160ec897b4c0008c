// python/src/bind_io.cpp — reading and writing image files with the library's readers (PNG, TIFF
// and TIFF stacks, JPEG, BMP), so a user needs no other imaging package to feed `segment`.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "arrays.h"
#include "bindings.h"
#include "core/error.h"
#include "unet/image_io.h"

namespace py = pybind11;

namespace unetcore_py {
namespace {

py::array read_stack(const std::string& path) {
  const std::vector<unet::Image> pages = [&] {
    py::gil_scoped_release release;
    return unet::read_image_stack(path);
  }();
  for (size_t i = 1; i < pages.size(); ++i)
    UNET_CHECK(pages[i].width == pages[0].width && pages[i].height == pages[0].height &&
                   pages[i].channels == pages[0].channels && pages[i].format == pages[0].format,
               unet::ShapeError, path, ": page ", i, " (", pages[i].width, "x", pages[i].height, ", ",
               pages[i].channels, " channel(s), ", unet::to_string(pages[i].format), ") differs from page 0 (",
               pages[0].width, "x", pages[0].height, ", ", pages[0].channels, " channel(s), ",
               unet::to_string(pages[0].format), "); one array holds pages of one size and type");
  return images_array(pages, true);
}

// (H, W): one grey page; (N, H, W): a stack of N grey pages.
void write_tiff(const std::string& path, const py::array& array, bool compress) {
  UNET_CHECK(array.ndim() == 2 || array.ndim() == 3, unet::ShapeError, "write_tiff: ", path,
             ": pass an image (H, W) or a stack (N, H, W) of grey pages, got ", array.ndim(), " dimensions");
  std::vector<unet::Image> pages;
  if (array.ndim() == 3) {
    for (py::ssize_t i = 0; i < array.shape(0); ++i)
      pages.push_back(array_image(array[py::int_(i)].cast<py::array>(), "write_tiff", "page"));
  } else {
    pages.push_back(array_image(array, "write_tiff", "image"));
  }
  py::gil_scoped_release release;
  unet::write_tiff_stack(path, pages, compress ? unet::TiffCompression::LZW : unet::TiffCompression::None);
}

}  // namespace

void bind_io(py::module_& m) {
  m.def("read_image", [](const std::string& path) {
    const unet::Image image = [&] {
      py::gil_scoped_release release;
      return unet::read_image(path);
    }();
    return images_array({image}, false);
  }, py::arg("path"),
        "The image in a file (PNG, TIFF, JPEG, BMP) as an array of its stored type (uint8, uint16, uint32 or "
        "float32), (H, W) or (H, W, C). A multi-page TIFF raises FileError: use read_stack.");
  m.def("read_stack", &read_stack, py::arg("path"),
        "Every page of a TIFF stack, (N, H, W) or (N, H, W, C); other files give N = 1. Pages must share size "
        "and type.");
  m.def("to_grey", [](const py::array& rgb) {
    const unet::Image image = array_image(rgb, "to_grey", "image");
    const unet::Image grey = [&] {
      py::gil_scoped_release release;
      return unet::to_grey(unet::normalised(image));
    }();
    return images_array({grey}, false);
  }, py::arg("image"),
        "A colour image (H, W, 3) or (H, W, 4) as grey float32 (H, W) in [0, 1]: scaled by its dtype's maximum, "
        "then the luminance 0.299 R + 0.587 G + 0.114 B (alpha ignored); what segment does with colour files.");
  m.def("write_tiff", &write_tiff, py::arg("path"), py::arg("array"), py::arg("compress") = true,
        "Writes an image (H, W) or a stack of grey pages (N, H, W) as a TIFF (LZW unless compress=False): "
        "uint8, uint16, uint32 or float32 samples (float32 keeps probabilities exact).");
}

}  // namespace unetcore_py
