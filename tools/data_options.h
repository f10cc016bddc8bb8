// The dataset options shared by every subcommand that reads --data: the path, IDX labels, and for
// folders of image files (or a --manifest) the import settings and the image pipeline.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "learn/learn.h"

namespace imsat::cli {

struct DataOptions {
  std::string data, labels, manifest;
  // The image pipeline, for commands that make a model (train, eval without --model); the others
  // use the pipeline the model recorded.
  int channels = 1, image_size = 32;
  std::string fit = "pad", background = "white", features = "pixels";
  bool strict = false, keep_duplicates = false;
  size_t max_pixels = 8192u * 8192u;
};

// Adds --manifest, --strict, --keep-duplicates, --max-image-pixels and, with `pipeline_flags`,
// --channels, --image-size, --fit, --background, --image-features. The caller adds --data and
// --labels (their help differs per command).
void add_image_options(CLI::App* cmd, DataOptions* o, bool pipeline_flags);

// The import settings: the pipeline from `model` (learn::Model::image_input; an IDX-style grey
// pixel model reads images as grey squares of its size), without a model from the flags.
io::ImageImport image_import(const DataOptions& o, const learn::Model* model);

// Loads --data (or --manifest): image imports show a progress bar and print each skipped file
// and a summary on stderr (unless quiet).
learn::Dataset load_data(const DataOptions& o, const learn::Model* model, bool quiet);

}  // namespace imsat::cli
