#include "data_options.h"

#include <cstdio>

#include "cli.h"
#include "progress.h"

namespace imsat::cli {

void add_image_options(CLI::App* cmd, DataOptions* o, bool pipeline_flags) {
  cmd->add_option("--manifest", o->manifest,
                  "Images listed in a CSV or JSON-lines file (path, optional key and label, other "
                  "columns kept as metadata) instead of --data");
  cmd->add_flag("--strict", o->strict, "Stop at the first unusable image file instead of skipping");
  cmd->add_flag("--keep-duplicates", o->keep_duplicates,
                "Read a file reached by two paths (symbolic links) twice");
  cmd->add_option("--max-image-pixels", o->max_pixels,
                  "Skip image files that declare more pixels (checked before decoding)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  if (!pipeline_flags) return;
  cmd->add_option("--channels", o->channels, "Images: 1 (grey) or 3 (RGB)")
      ->check(CLI::IsMember({1, 3}))
      ->capture_default_str();
  cmd->add_option("--image-size", o->image_size, "Images: resized to this square side")
      ->check(CLI::Range(8, 512))
      ->capture_default_str();
  cmd->add_option("--fit", o->fit, "Images: pad, crop or stretch to the square")
      ->check(CLI::IsMember({"pad", "crop", "stretch"}))
      ->capture_default_str();
  cmd->add_option("--background", o->background,
                  "Images: colour behind transparency and padding (white, black, #rrggbb)")
      ->capture_default_str();
  cmd->add_option("--image-features", o->features,
                  "Images: raw pixels, or the GIST descriptor (512 values per channel)")
      ->check(CLI::IsMember({"pixels", "gist"}))
      ->capture_default_str();
}

io::ImageImport image_import(const DataOptions& o, const learn::Model* model) {
  io::ImageImport settings;
  settings.manifest = o.manifest;
  settings.strict = o.strict;
  settings.keep_duplicates = o.keep_duplicates;
  settings.max_pixels = o.max_pixels;
  if (model != nullptr) {
    // A model that does not take images keeps the default pipeline; load_data refuses images.
    Result<io::ImagePipeline> p = model->image_input();
    if (p.is_ok()) settings.pipeline = *p;
  } else {
    io::ImagePipeline& p = settings.pipeline;
    p.channels = o.channels;
    p.size = o.image_size;
    p.fit = take(io::parse_fit(o.fit));
    check(io::parse_background(o.background, p.background));
    p.features = take(io::parse_features(o.features));
  }
  return settings;
}

learn::Dataset load_data(const DataOptions& o, const learn::Model* model, bool quiet) {
  if (o.data.empty() && o.manifest.empty()) throw UsageError("give --data or --manifest");
  io::ImageImport settings = image_import(o, model);
  const bool images = !o.manifest.empty() || io::is_image_folder(o.data);
  if (images && model != nullptr) {
    const Status takes_images = model->image_input().status();
    if (!takes_images.is_ok()) {
      throw std::runtime_error((o.manifest.empty() ? o.data : o.manifest) +
                               ": a folder of images, but " + takes_images.message());
    }
  }
  ProgressBar bar("read images", quiet);
  settings.on_progress = [&bar](size_t done, size_t total) { bar.items(done, total); };
  io::ImportReport report;
  learn::Dataset data = take(learn::load_dataset(o.data, o.labels, settings, &report));
  if (images) {
    bar.finish_items(report.read + report.skipped_total());
    for (const std::string& line : report.skip_lines) {
      std::fprintf(stderr, "imsat: skipped %s\n", line.c_str());
    }
    std::fprintf(stderr, "imsat: %s: %s\n", data.source.c_str(), report.summary().c_str());
  }
  return data;
}

}  // namespace imsat::cli
