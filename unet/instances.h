// unet/instances.h — from a probability map to object instances (the paper's cell experiments):
// threshold, connected components, then optional clean-up — small objects removed, holes filled,
// the separation border that training carved between touching cells given back — and the Cell
// Tracking Challenge's result files (maskTTT.tif: 16-bit, 0 = background, one id per object).
//
// Order of the steps: threshold (foreground = p > threshold) → components (or, with a seed
// threshold, objects grown from confident cores: below) → small objects removed → holes filled → border restored → ids renumbered 1..n in raster order of each
// object's first pixel. Removing specks first keeps them from claiming border pixels; a hole
// is a background region enclosed by one object only (a pocket between two objects is a gap,
// not a hole, and stays).
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "unet/connected_components.h"
#include "unet/image.h"

namespace unet {

struct InstanceOptions {
  float threshold = 0.5f;  // foreground = probability > threshold, in [0, 1)
  int64_t min_size = 0;    // objects of fewer pixels are removed; 0 keeps every object
  bool fill_holes = false; // background regions enclosed by a single object join it
  // Gives back a separation border of this radius (CellTargetOptions::border_radius): a
  // background pixel joins its nearest object when that object is within `restore_border` and a
  // second object within 2·restore_border — the pixels of a gap up to 2·restore_border wide
  // between two objects, not those along an object's outer edge. 0 = off. (On the ground truth
  // of both CTC sets, carving then restoring scores below carving alone for r >= 1.5: natural
  // narrow gaps between cells get filled too; docs/cells.md.)
  float restore_border = 0.0f;
  // Objects grown from seeds (a watershed of the probability flooded from its peaks), 0 = off:
  // the seeds are the components of probability > core_threshold — the cells' confident cores,
  // which a bridge of middling probability between two touching cells does not join — and they
  // grow into the foreground (probability > threshold), the most probable pixel first. A
  // foreground component that holds no seed stays an object of its own. Either 0 or in
  // (threshold, 1). (Plain thresholding merges two cells wherever one pixel path between them
  // stays above the threshold; docs/cells.md has the measurement.)
  float core_threshold = 0.0f;
  Connectivity connectivity = Connectivity::Four;  // of the foreground (the challenges' measures: 4)

  std::string to_json() const;  // kept in checkpoints' metadata ("unetcore.instances"); floats to 6 decimals
  static InstanceOptions from_json(const std::string& text);  // ValueError for bad JSON or values
  // The options a model file's metadata carries (train_cells writes them), else the defaults:
  // what `segment --instances` and unetcore's Model.instances start from.
  static InstanceOptions of_model(const std::map<std::string, std::string>& metadata);
  void validate() const;        // ValueError naming the bad field
};

// The instances of a probability map (one channel, values in [0, 1]; integer images are
// normalised first). Ids 1..n in raster order.
LabelImage instances_from_probability(const Image& probability, const InstanceOptions& options = {});

// The steps on their own; each returns ids 1..n in raster order of the objects' first pixels.
LabelImage remove_small_objects(const LabelImage& instances, int64_t min_size);
// The foreground's pixels (foreground[i] != 0) joined to the seeds (ids > 0 in `seeds`, which
// must lie in the foreground) by a priority flood of `probability` (one channel, the size of
// both): the unclaimed foreground pixel of highest probability next to an object joins it (ties:
// the pixel reached first), until none is left next to one; then every foreground component
// without a seed becomes an object of its own. Deterministic; ids 1..n in raster order.
LabelImage grow_from_seeds(const Image& probability, const std::vector<uint8_t>& foreground, const LabelImage& seeds,
                           Connectivity connectivity = Connectivity::Four);
// `connectivity` is the objects' (holes are then the background's components under the other one).
LabelImage fill_holes(const LabelImage& instances, Connectivity connectivity = Connectivity::Four);
LabelImage restore_separation_border(const LabelImage& instances, float radius);
// Ids 1..n in raster order of each id's first pixel (pixels of one id need not be connected).
LabelImage renumber(const LabelImage& instances);

// Writes a CTC result mask: 16-bit grey TIFF of the ids. Throws ValueError above 65535 ids
// (renumber first) and IOError when the file cannot be written.
void write_instance_mask(const std::string& path, const LabelImage& instances);

// The challenge's result name for a frame: "tTTT" (any number of digits) -> "maskTTT.tif";
// any other stem -> "<stem>_mask.tif".
std::string instance_mask_name(const std::string& frame_stem);

}  // namespace unet
