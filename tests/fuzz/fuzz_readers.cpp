// libFuzzer target over every file reader: byte 0 picks the format (IDX images, IDX labels,
// fvecs, bvecs, ivecs, CSV, codes file, model file, an image file through the image pipeline and
// the thumbnail maker, an image manifest); the rest is written to a file of that kind and read
// back. Readers must return an error, never crash, on any input.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "learn/learn.h"
#include "query/query.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static const std::string dir = [] {
    auto d =
        std::filesystem::temp_directory_path() / ("imsat-fuzz-readers-" + std::to_string(getpid()));
    std::filesystem::create_directories(d);
    // A valid 2-image IDX file, so the label reader (kind 1) is reached.
    const unsigned char idx[] = {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2,
                                 0, 0, 0, 2, 0, 1, 2, 3, 4, 5, 6, 7};
    std::ofstream(d / "good-images", std::ios::binary)
        .write(reinterpret_cast<const char*>(idx), sizeof(idx));
    return d.string();
  }();
  static const char* names[] = {
      "images-idx3-ubyte", "labels-idx1-ubyte", "x.fvecs", "x.bvecs",      "x.ivecs", "x.csv",
      "x.codes",           "x.model",           "x.image", "manifest.csv", "x.npy",   "x.npz"};
  const int kind = data[0] % 12;
  const std::string path = dir + "/" + names[kind];
  {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(data + 1), static_cast<std::streamsize>(size - 1));
  }
  switch (kind) {
    case 0:
      (void)imsat::learn::read_idx(path).is_ok();
      break;
    case 1:
      (void)imsat::learn::read_idx(dir + "/good-images", path).is_ok();
      break;
    case 6:
      (void)imsat::query::read_codes_file(path).is_ok();
      break;
    case 7:
      (void)imsat::learn::Model::load(path).is_ok();
      break;
    case 8: {
      const std::string bytes(reinterpret_cast<const char*>(data + 1), size - 1);
      imsat::io::ImagePipeline p;
      p.size = 16;
      p.channels = 3;
      p.fit = static_cast<imsat::io::Fit>(data[0] / 12 % 3);
      (void)imsat::io::preprocess_image(bytes, p, 1 << 20).is_ok();
      (void)imsat::io::make_thumbnail(bytes, 24, 1 << 20).is_ok();
      break;
    }
    case 9: {
      imsat::io::ImageImport settings;
      settings.manifest = path;
      settings.threads = 1;
      (void)imsat::io::read_image_manifest(settings, nullptr).is_ok();
      break;
    }
    default:
      (void)imsat::learn::load_dataset(path).is_ok();
  }
  return 0;
}
