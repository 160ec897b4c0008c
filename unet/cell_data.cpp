// unet/cell_data.cpp — CTC sequences, the training/validation split, partial frames.
#include "unet/cell_data.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>

#include "core/error.h"

namespace unet {
namespace {

namespace fs = std::filesystem;

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ", ") + s;
  return out.empty() ? "(none)" : out;
}

// "TTT" matches frame TTT of any of `sequences`; "SS/TTT" only of SS. Frame numbers compare as
// numbers, so "54" names frame 054.
bool names_frame(const std::string& name, const CellFrame& f) {
  const auto slash = name.find('/');
  const std::string seq = slash == std::string::npos ? "" : name.substr(0, slash);
  const std::string frame = slash == std::string::npos ? name : name.substr(slash + 1);
  if (!seq.empty() && seq != f.sequence) return false;
  try {
    size_t used = 0;
    const long n = std::stol(frame, &used);
    return used == frame.size() && n == std::stol(f.sample.name);
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace

std::vector<std::string> ctc_sequences(const std::string& dataset_dir) {
  std::error_code ec;
  UNET_CHECK(fs::is_directory(dataset_dir, ec), IOError, dataset_dir,
             ": CTC data set folder does not exist (expected <set>/01/tTTT.tif and <set>/01_GT/SEG/man_segTTT.tif)");
  std::vector<std::string> sequences;
  for (const auto& entry : fs::directory_iterator(dataset_dir)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_directory() && fs::is_directory(entry.path().parent_path() / (name + "_GT") / "SEG", ec))
      sequences.push_back(name);
  }
  std::sort(sequences.begin(), sequences.end());
  UNET_CHECK(!sequences.empty(), IOError, dataset_dir,
             ": no sequence with segmentation ground truth (expected SS/ and SS_GT/SEG/ folders, e.g. 01 and 01_GT/SEG)");
  return sequences;
}

CellDataSplit load_cell_split(const std::string& dataset_dir, const CellSplitOptions& options) {
  UNET_CHECK(options.validation_fraction > 0.0 && options.validation_fraction < 1.0, ValueError,
             "load_cell_split: validation_fraction must lie in (0, 1), got ", options.validation_fraction);
  const std::vector<std::string> available = ctc_sequences(dataset_dir);
  auto require_sequence = [&](const std::string& s, const char* role) {
    UNET_CHECK(std::find(available.begin(), available.end(), s) != available.end(), ValueError, dataset_dir,
               ": the ", role, " sequence '", s, "' has no ground truth here; annotated sequences: ", joined(available));
  };
  if (!options.validation_sequence.empty()) require_sequence(options.validation_sequence, "validation");
  std::vector<std::string> train_seqs = options.train_sequences;
  std::string val_seq = options.validation_sequence;
  if (train_seqs.empty()) {
    if (val_seq.empty() && options.validation_frames.empty() && available.size() >= 2) val_seq = available.back();
    for (const auto& s : available)
      if (s != val_seq) train_seqs.push_back(s);
  }
  for (const auto& s : train_seqs) {
    require_sequence(s, "training");
    UNET_CHECK(s != val_seq, ValueError, dataset_dir, ": sequence '", s,
               "' cannot both train and validate as a whole; name validation frames instead");
  }
  UNET_CHECK(!train_seqs.empty(), ValueError, dataset_dir, ": no sequence left to train on (annotated: ",
             joined(available), ", validating: ", val_seq, ")");

  // Every frame of the sequences involved, with its partial flag.
  std::vector<std::string> involved = train_seqs;
  if (!val_seq.empty()) involved.push_back(val_seq);
  std::vector<CellFrame> frames;
  for (const auto& seq : involved) {
    std::vector<Sample> samples = load_ctc_dataset(dataset_dir, seq);
    std::vector<LabelImage> labels;
    for (const Sample& sample : samples) labels.push_back(sample.labels);
    const std::vector<bool> found =
        options.detect_partial ? find_partial_annotations(labels) : std::vector<bool>(samples.size(), false);
    for (size_t i = 0; i < samples.size(); ++i) {
      if (samples[i].image.channels != 1) samples[i].image = to_grey(samples[i].image);  // the network sees grey
      frames.push_back({seq, std::move(samples[i]), found[i]});
    }
  }
  for (const auto& name : options.partial_frames) {
    bool hit = false;
    for (auto& f : frames)
      if (names_frame(name, f)) f.partial = hit = true;
    UNET_CHECK(hit, ValueError, dataset_dir, ": the partially annotated frame '", name,
               "' is not an annotated frame of the sequences used (", joined(involved), ")");
  }

  CellDataSplit split;
  std::set<std::string> validating;
  if (!val_seq.empty()) {
    for (const auto& f : frames)
      if (f.sequence == val_seq) validating.insert(f.id());
  }
  for (const auto& name : options.validation_frames) {
    bool hit = false;
    for (const auto& f : frames)
      if (f.sequence != val_seq && names_frame(name, f)) {
        validating.insert(f.id());
        hit = true;
      }
    UNET_CHECK(hit, ValueError, dataset_dir, ": the validation frame '", name,
               "' is not an annotated frame of the training sequences (", joined(train_seqs), ")");
  }
  if (validating.empty()) {
    // The last fraction of the fully annotated frames of the last training sequence.
    std::vector<const CellFrame*> full;
    size_t in_sequence = 0;
    for (const auto& f : frames)
      if (f.sequence == train_seqs.back()) {
        ++in_sequence;
        if (!f.partial) full.push_back(&f);
      }
    UNET_CHECK(in_sequence >= 2 && !full.empty(), ValueError, dataset_dir, ": sequence ", train_seqs.back(), " has ",
               in_sequence, " annotated frame(s), ", full.size(),
               " fully annotated: a validation split needs two or more (or name a validation sequence)");
    const size_t n = std::min(full.size(), std::max<size_t>(1, static_cast<size_t>(std::ceil(
                                                                   options.validation_fraction * full.size()))));
    const size_t keep = std::min(n, in_sequence - 1);  // leave at least one frame to train on
    for (size_t i = full.size() - keep; i < full.size(); ++i) validating.insert(full[i]->id());
  }
  for (auto& f : frames) (validating.count(f.id()) ? split.validation : split.train).push_back(std::move(f));
  UNET_CHECK(!split.train.empty(), ValueError, dataset_dir, ": every annotated frame validates; none is left to train on");
  return split;
}

std::vector<TrainingSlice> make_cell_training_slices(const std::vector<CellFrame>& frames,
                                                     const CellTargetOptions& options) {
  // A masked frame's own class frequencies are the mask's (a few cells and a thin ring of
  // background), so its w_c comes from the fully annotated frames instead.
  CellTargetOptions masked = options;
  std::vector<LabelImage> complete;
  for (const CellFrame& f : frames)
    if (!f.partial) complete.push_back(separate_instances(f.sample.labels, options.border_radius));
  if (!complete.empty() && options.weights.balance_classes && !options.weights.class_weights)
    masked.weights.class_weights = dataset_class_weights(complete);
  std::vector<TrainingSlice> slices;
  for (const CellFrame& f : frames) {
    if (f.partial && options.partial == PartialAnnotation::Exclude) continue;
    const bool mask = f.partial && options.partial == PartialAnnotation::Mask;
    TrainingSlice s = make_cell_training_slice(f.sample, mask ? masked : options, mask);
    s.name = f.id();
    slices.push_back(std::move(s));
  }
  UNET_CHECK(!slices.empty(), ValueError, "make_cell_training_slices: no frame left to train on (",
             frames.size(), " frame(s), partially annotated ones excluded)");
  return slices;
}

}  // namespace unet
