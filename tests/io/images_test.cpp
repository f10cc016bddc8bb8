// Image files as datasets: the pipeline (compositing, grey/RGB, pad/crop/stretch),
// GIST against an independent NumPy implementation, folders of every format stb reads with bad
// files skipped and counted, --strict, symbolic links, non-UTF-8 names, and manifests.
#include "io/images.h"

#include <gtest/gtest.h>
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "io/datasets.h"
#include "support/png.h"
#include "support/temp_dir_test.h"

namespace {

namespace io = imsat::io;
namespace fs = std::filesystem;

void write(const fs::path& path, const std::string& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << bytes;
}

void append_to(void* ctx, void* data, int size) {
  static_cast<std::string*>(ctx)->append(static_cast<const char*>(data), static_cast<size_t>(size));
}

std::string jpeg(int w, int h, int channels, const std::vector<unsigned char>& px) {
  std::string out;
  stbi_write_jpg_to_func(append_to, &out, w, h, channels, px.data(), 95);
  return out;
}
std::string bmp(int w, int h, int channels, const std::vector<unsigned char>& px) {
  std::string out;
  stbi_write_bmp_to_func(append_to, &out, w, h, channels, px.data());
  return out;
}
std::string tga(int w, int h, int channels, const std::vector<unsigned char>& px) {
  std::string out;
  stbi_write_tga_to_func(append_to, &out, w, h, channels, px.data());
  return out;
}
std::string pnm(int w, int h, int channels, const std::vector<unsigned char>& px) {
  return std::string(channels == 1 ? "P5" : "P6") + "\n" + std::to_string(w) + " " +
         std::to_string(h) + "\n255\n" + std::string(px.begin(), px.end());
}
// A 1 x 1 GIF whose only pixel is transparent (palette entry 0, white, marked transparent).
const std::string kTransparentGif(
    "GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00"
    ",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02\x44\x01\x00;",
    43);

std::vector<unsigned char> pattern(int w, int h, int channels, unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<unsigned char> px(static_cast<size_t>(w * h * channels));
  for (auto& v : px) v = static_cast<unsigned char>(rng() % 256);
  return px;
}

TEST(ImagePipeline, RoundTripsThroughJsonAndRefusesBadValues) {
  io::ImagePipeline p;
  p.channels = 3;
  p.size = 24;
  p.fit = io::Fit::kCrop;
  p.background[0] = 0x12;
  p.background[1] = 0xab;
  p.background[2] = 0xff;
  p.features = io::ImageFeatures::kGist;
  auto back = io::ImagePipeline::from_json(p.to_json());
  ASSERT_TRUE(back.is_ok()) << back.status().to_string();
  EXPECT_EQ(back->to_json(), p.to_json());
  EXPECT_EQ(back->output_dim(), 3 * io::kGistPerChannel);
  EXPECT_EQ(io::kGistPerChannel, 512u);
  io::ImagePipeline pixels;
  EXPECT_EQ(pixels.output_dim(), 32u * 32u);
  pixels.channels = 3;
  EXPECT_EQ(pixels.output_shape(), (std::vector<size_t>{32, 32, 3}));

  EXPECT_FALSE(io::ImagePipeline::from_json(R"({"channels": 2, "size": 32, "fit": "pad",
      "background": "#ffffff", "features": "pixels"})")
                   .is_ok());
  auto bad_fit = io::ImagePipeline::from_json(R"({"channels": 1, "size": 32, "fit": "zoom",
      "background": "#ffffff", "features": "pixels"})");
  EXPECT_NE(bad_fit.status().message().find("zoom"), std::string::npos);
  uint8_t rgb[3];
  EXPECT_FALSE(io::parse_background("#12345", rgb).is_ok());
  ASSERT_TRUE(io::parse_background("#0a0B0c", rgb).is_ok());
  EXPECT_EQ(rgb[1], 11);
}

TEST(ImagePipeline, PadsCropsAndStretches) {
  // A 4 x 2 grey picture: left half 0, right half 200.
  const std::vector<uint8_t> px = {0, 0, 200, 200, 0, 0, 200, 200};
  io::ImagePipeline p;
  p.size = 4;
  p.fit = io::Fit::kPad;
  std::vector<uint8_t> padded = io::fit_pixels(px.data(), 4, 2, 1, p);
  const std::vector<uint8_t> expect_pad = {255, 255, 255, 255, 0,   0,   200, 200,
                                           0,   0,   200, 200, 255, 255, 255, 255};
  EXPECT_EQ(padded, expect_pad);
  p.fit = io::Fit::kStretch;
  std::vector<uint8_t> stretched = io::fit_pixels(px.data(), 4, 2, 1, p);
  for (int y = 0; y < 4; ++y) {
    EXPECT_EQ(stretched[static_cast<size_t>(y) * 4], 0);
    EXPECT_EQ(stretched[static_cast<size_t>(y) * 4 + 3], 200);
  }
  p.fit = io::Fit::kCrop;  // the centred 2 x 2 square: columns 1 and 2
  p.size = 2;
  std::vector<uint8_t> cropped = io::fit_pixels(px.data(), 4, 2, 1, p);
  EXPECT_EQ(cropped, (std::vector<uint8_t>{0, 200, 0, 200}));
  // Shrinking averages areas: 4 x 4 of alternating 0 / 200 columns to 2 x 2 gives 100.
  const std::vector<uint8_t> stripes = {0, 200, 0, 200, 0, 200, 0, 200,
                                        0, 200, 0, 200, 0, 200, 0, 200};
  p.fit = io::Fit::kStretch;
  for (uint8_t v : io::fit_pixels(stripes.data(), 4, 4, 1, p)) EXPECT_NEAR(v, 100, 1);
}

TEST(ImagePipeline, CompositesTransparencyOverTheBackground) {
  // RGBA: transparent red, half-transparent red, opaque blue, opaque white.
  const std::vector<uint8_t> px = {255, 0, 0,   0,   255, 0,   0,   128,
                                   0,   0, 255, 255, 255, 255, 255, 255};
  io::ImagePipeline p;
  p.size = 2;
  p.channels = 3;
  std::vector<uint8_t> out = io::fit_pixels(px.data(), 2, 2, 4, p);
  EXPECT_EQ((std::vector<uint8_t>(out.begin(), out.begin() + 3)),
            (std::vector<uint8_t>{255, 255, 255}));
  EXPECT_NEAR(out[3], 255, 1);
  EXPECT_NEAR(out[4], 127, 1);
  EXPECT_NEAR(out[5], 127, 1);
  EXPECT_EQ((std::vector<uint8_t>(out.begin() + 6, out.begin() + 9)),
            (std::vector<uint8_t>{0, 0, 255}));
  p.background[0] = p.background[1] = p.background[2] = 0;
  p.channels = 1;
  out = io::fit_pixels(px.data(), 2, 2, 4, p);
  EXPECT_EQ(out[0], 0);                              // transparent over black
  EXPECT_NEAR(out[1], std::lround(0.299 * 128), 1);  // half red over black, as luma
  EXPECT_NEAR(out[2], std::lround(0.114 * 255), 1);  // blue as luma
  EXPECT_EQ(out[3], 255);

  // The GIF's one transparent pixel takes the background's colour.
  p.size = 1;
  auto white = io::preprocess_image(kTransparentGif, io::ImagePipeline{});
  ASSERT_TRUE(white.is_ok()) << white.status().to_string();
  EXPECT_EQ(white->size(), 32u * 32u);
  EXPECT_EQ((*white)[0], 255.0f);
  auto black = io::preprocess_image(kTransparentGif, p);
  ASSERT_TRUE(black.is_ok());
  EXPECT_EQ((*black)[0], 0.0f);
}

TEST(ImagePipeline, RefusesBadImagesWithAReason) {
  io::SkipReason why{};
  const std::string good = imsat::testing::png(4, 4, 1, pattern(4, 4, 1, 1));
  EXPECT_FALSE(io::preprocess_image("", io::ImagePipeline{}, 0, &why).is_ok());
  EXPECT_EQ(why, io::SkipReason::kEmpty);
  EXPECT_FALSE(io::preprocess_image("hello, world", io::ImagePipeline{}, 0, &why).is_ok());
  EXPECT_EQ(why, io::SkipReason::kNotImage);
  EXPECT_FALSE(io::preprocess_image(good.substr(0, 20), io::ImagePipeline{}, 0, &why).is_ok());
  EXPECT_EQ(why, io::SkipReason::kTruncated);
  // A binary PNM cut short (stb would leave the missing pixels uninitialised).
  const std::string pgm = pnm(8, 8, 1, pattern(8, 8, 1, 3));
  EXPECT_TRUE(io::preprocess_image(pgm, io::ImagePipeline{}).is_ok());
  EXPECT_FALSE(
      io::preprocess_image(pgm.substr(0, pgm.size() - 5), io::ImagePipeline{}, 0, &why).is_ok());
  EXPECT_EQ(why, io::SkipReason::kTruncated);
  EXPECT_TRUE(
      io::preprocess_image("P5\n# a comment\n2 1\n255\n\x01\x02", io::ImagePipeline{}).is_ok());
  auto big = io::preprocess_image(good, io::ImagePipeline{}, 15, &why);
  EXPECT_EQ(why, io::SkipReason::kTooLarge);
  EXPECT_NE(big.status().message().find("4 x 4 pixels"), std::string::npos);
}

// JPEG files are decoded by libjpeg-turbo at a reduced DCT scale; the result must match a full
// decode (stb) resized by area averaging, and a cut-off JPEG is refused as damaged.
TEST(ImagePipeline, JpegAtAReducedScaleMatchesAFullDecode) {
  const int w = 256, h = 200;
  std::vector<unsigned char> px(static_cast<size_t>(w * h * 3));
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      px[static_cast<size_t>((y * w + x) * 3)] = static_cast<unsigned char>(x);
      px[static_cast<size_t>((y * w + x) * 3 + 1)] = static_cast<unsigned char>(y);
      px[static_cast<size_t>((y * w + x) * 3 + 2)] =
          static_cast<unsigned char>((x / 32 + y / 32) % 2 * 200);
    }
  }
  const std::string file = jpeg(w, h, 3, px);
  for (const io::Fit fit : {io::Fit::kStretch, io::Fit::kPad, io::Fit::kCrop}) {
    for (const int channels : {1, 3}) {
      io::ImagePipeline p;
      p.size = 32;
      p.channels = channels;
      p.fit = fit;
      auto ours = io::preprocess_image(file, p);
      ASSERT_TRUE(ours.is_ok()) << ours.status().to_string();
      int fw = 0, fh = 0, comp = 0;
      std::unique_ptr<stbi_uc, void (*)(void*)> full(
          stbi_load_from_memory(reinterpret_cast<const stbi_uc*>(file.data()),
                                static_cast<int>(file.size()), &fw, &fh, &comp, 0),
          stbi_image_free);
      ASSERT_NE(full, nullptr);
      const std::vector<uint8_t> ref = io::fit_pixels(full.get(), fw, fh, comp, p);
      ASSERT_EQ(ours->size(), ref.size());
      double sum = 0;
      for (size_t i = 0; i < ref.size(); ++i) sum += std::abs((*ours)[i] - ref[i]);
      EXPECT_LT(sum / static_cast<double>(ref.size()), 4.0)
          << "fit " << static_cast<int>(fit) << ", channels " << channels;
    }
  }
  io::SkipReason why{};
  auto cut = io::preprocess_image(file.substr(0, file.size() / 2), io::ImagePipeline{}, 0, &why);
  ASSERT_FALSE(cut.is_ok());
  EXPECT_EQ(why, io::SkipReason::kTruncated) << cut.status().message();
}

// GIST against tests/io/gist_reference.py (NumPy, written from the LMgist reference separately).
TEST(Gist, MatchesAnIndependentNumPyImplementation) {
  const int side = 32;
  std::mt19937 rng(5);
  std::vector<float> img(side * side);
  // Smooth structure plus noise, so every scale responds.
  for (int y = 0; y < side; ++y) {
    for (int x = 0; x < side; ++x) {
      img[static_cast<size_t>(y * side + x)] = static_cast<float>(
          128 + 60 * std::sin(x * 0.4) * std::cos(y * 0.25) + static_cast<int>(rng() % 60) - 30);
    }
  }
  const std::vector<float> ours = io::gist_descriptor(img.data(), side);
  ASSERT_EQ(ours.size(), 512u);

  std::string tmpl = (fs::temp_directory_path() / "imsat-gist-XXXXXX").string();
  ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
  const fs::path dir = tmpl;
  {
    std::ofstream f(dir / "in.f32", std::ios::binary);
    f.write(reinterpret_cast<const char*>(img.data()),
            static_cast<std::streamsize>(img.size() * sizeof(float)));
  }
  const std::string script = std::string(IMSAT_TEST_SOURCE_DIR) + "/io/gist_reference.py";
  // Debian's interpreter, which has python3-numpy (tools/setup.sh installs it).
  const std::string cmd = "/usr/bin/python3 " + script + " " + (dir / "in.f32").string() + " " +
                          std::to_string(side) + " " + (dir / "out.f64").string();
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd << " failed (is python3-numpy installed?)";
  std::vector<double> ref(512);
  {
    std::ifstream f(dir / "out.f64", std::ios::binary);
    f.read(reinterpret_cast<char*>(ref.data()), 512 * sizeof(double));
    ASSERT_EQ(f.gcount(), static_cast<std::streamsize>(512 * sizeof(double)));
  }
  fs::remove_all(dir);
  double max_rel = 0, norm = 0;
  for (size_t i = 0; i < 512; ++i) {
    norm = std::max(norm, std::abs(ref[i]));
    max_rel = std::max(max_rel, std::abs(ours[i] - ref[i]) / (std::abs(ref[i]) + 1e-3));
  }
  EXPECT_GT(norm, 0.01);
  EXPECT_LT(max_rel, 1e-4);
}

class ImageFolderTest : public imsat::testing::TempDirTest {};

// Every format stb reads, nested folders, and each kind of bad file.
void make_tree(const fs::path& root) {
  const auto rgb = pattern(10, 6, 3, 1);
  write(root / "cats/a.png", imsat::testing::png(10, 6, 3, rgb));
  write(root / "cats/b.jpg", jpeg(7, 9, 1, pattern(7, 9, 1, 2)));
  write(root / "cats/deeper/c.bmp", bmp(5, 5, 3, pattern(5, 5, 3, 3)));
  write(root / "dogs/d.tga", tga(6, 4, 4, pattern(6, 4, 4, 4)));
  write(root / "dogs/e.pgm", pnm(8, 8, 1, pattern(8, 8, 1, 5)));
  write(root / "dogs/f.ppm", pnm(3, 12, 3, pattern(3, 12, 3, 6)));
  write(root / "dogs/g.gif", kTransparentGif);
  write(root / "dogs/h.png", imsat::testing::png(4, 4, 2, pattern(4, 4, 2, 7)));  // grey + alpha
  const std::string png = imsat::testing::png(9, 9, 1, pattern(9, 9, 1, 8));
  write(root / "birds/broken.png", png.substr(0, 30));
  write(root / "birds/empty.png", "");
  write(root / "birds/readme.txt", "not a picture");
  write(root / "birds/i.png", png);
  write(root / "birds/\xff odd.png", imsat::testing::png(9, 9, 1, pattern(9, 9, 1, 9)));
  fs::create_symlink(root / "cats/a.png", root / "birds/link.png");
  write(root / ".hidden/x.png", png);
}

TEST_F(ImageFolderTest, ReadsEveryFormatLabelsBySubfolderAndCountsSkips) {
  make_tree(dir_);
  io::ImageImport settings;
  settings.pipeline.size = 8;
  settings.threads = 2;
  size_t last_done = 0, last_total = 0;
  settings.on_progress = [&](size_t done, size_t total) {
    last_done = done;
    last_total = total;
  };
  io::ImportReport report;
  auto d = io::read_image_folder(dir_.string(), settings, &report);
  ASSERT_TRUE(d.is_ok()) << d.status().to_string();
  EXPECT_EQ(last_done, last_total);
  EXPECT_EQ(d->rows, 10u) << report.summary();
  EXPECT_EQ(report.read, 10u);
  EXPECT_EQ(report.skipped_total(), 4u);
  EXPECT_EQ(report.skipped.at(io::SkipReason::kTruncated), 1u);
  EXPECT_EQ(report.skipped.at(io::SkipReason::kEmpty), 1u);
  EXPECT_EQ(report.skipped.at(io::SkipReason::kNotImage), 1u);
  EXPECT_EQ(report.skipped.at(io::SkipReason::kDuplicate), 1u);
  EXPECT_EQ(report.summary(),
            "read 10, skipped 4 (not an image: 1, truncated or damaged: 1, empty: 1, "
            "duplicate: 1)");
  ASSERT_EQ(report.skip_lines.size(), 4u);
  EXPECT_EQ(report.skip_lines[0].rfind("birds/broken.png: truncated", 0), 0u);
  EXPECT_EQ(report.skip_lines[2].rfind("birds/link.png: duplicate", 0), 0u);
  EXPECT_EQ(d->cols, 64u);
  EXPECT_EQ(d->item_shape, (std::vector<size_t>{8, 8}));
  EXPECT_TRUE(d->uint8_pixels);
  EXPECT_EQ(d->label_names, (std::vector<std::string>{"birds", "cats", "dogs"}));
  // Sorted by path bytes; the non-UTF-8 name is escaped.
  const std::vector<std::string> keys = {
      "birds/\xff odd.png", "birds/i.png", "cats/a.png", "cats/b.jpg", "cats/deeper/c.bmp",
      "dogs/d.tga",         "dogs/e.pgm",  "dogs/f.ppm", "dogs/g.gif", "dogs/h.png"};
  std::vector<std::string> escaped = keys;
  escaped[0] = "birds/%FF odd.png";
  std::vector<std::string> sorted_keys = keys;
  std::sort(sorted_keys.begin(), sorted_keys.end());
  std::vector<std::string> expect;
  for (const std::string& k : sorted_keys) {
    expect.push_back(k == keys[0] ? escaped[0] : k);
  }
  EXPECT_EQ(d->keys, expect);
  ASSERT_EQ(d->labels.size(), 10u);
  for (size_t i = 0; i < d->rows; ++i) {
    const std::string first = d->keys[i].substr(0, d->keys[i].find('/'));
    EXPECT_EQ(d->label_names[static_cast<size_t>(d->labels[i])], first) << d->keys[i];
    EXPECT_NE(d->metadata[i].find("\"label_name\":\"" + first + "\""), std::string::npos);
  }
  EXPECT_EQ(d->image_pipeline, settings.pipeline.to_json());

  // The same folder gives the same rows on one thread.
  settings.threads = 1;
  auto again = io::read_image_folder(dir_.string(), settings, nullptr);
  ASSERT_TRUE(again.is_ok());
  EXPECT_EQ(again->values, d->values);

  // Duplicates read again when asked.
  settings.keep_duplicates = true;
  auto all = io::read_image_folder(dir_.string(), settings, nullptr);
  ASSERT_TRUE(all.is_ok());
  EXPECT_EQ(all->rows, 11u);

  // --strict: the first unusable file (in path order) is an error naming it.
  settings.strict = true;
  auto strict = io::read_image_folder(dir_.string(), settings, nullptr);
  ASSERT_FALSE(strict.is_ok());
  EXPECT_EQ(strict.status().message().rfind("birds/broken.png: truncated", 0), 0u)
      << strict.status().message();
}

// Bulk indexing streams an import: the reader's batches, from any position, hold exactly the rows
// (values, thumbnails, skips) of the whole import, in order.
TEST_F(ImageFolderTest, TheReaderStreamsTheWholeImportInBatchesFromAnyPosition) {
  make_tree(dir_);
  io::ImageImport settings;
  settings.pipeline.size = 8;
  settings.thumbnail_side = 6;
  settings.threads = 2;
  io::ImportReport whole_report;
  auto whole = io::read_image_folder(dir_.string(), settings, &whole_report);
  ASSERT_TRUE(whole.is_ok()) << whole.status().to_string();
  auto scan = io::scan_image_folder(dir_.string(), settings);
  ASSERT_TRUE(scan.is_ok());
  ASSERT_EQ(scan->files.size(), 14u);
  EXPECT_TRUE(scan->labelled);

  auto stream = [&](size_t first, size_t batch, io::ImportReport* report) {
    io::ImageReader reader(*scan, settings, first, batch);
    io::Dataset d;
    size_t expect_first = first;
    for (;;) {
      auto b = reader.next();
      EXPECT_TRUE(b.is_ok()) << b.status().to_string();
      if (!b.is_ok() || b->files == 0) break;
      EXPECT_EQ(b->first, expect_first);
      EXPECT_LE(b->files, batch);
      expect_first += b->files;
      report->merge(b->report);
      d.values.insert(d.values.end(), b->values.begin(), b->values.end());
      for (size_t r = 0; r < b->rows(); ++r) {
        d.keys.push_back(scan->key(b->positions[r]));
        d.thumbnails.push_back(b->thumbnails[r]);
      }
    }
    EXPECT_EQ(expect_first, scan->files.size());
    auto again = reader.next();  // the end stays the end
    EXPECT_TRUE(again.is_ok() && again->files == 0);
    return d;
  };
  io::ImportReport report;
  const io::Dataset streamed = stream(0, 4, &report);
  EXPECT_EQ(streamed.values, whole->values);
  EXPECT_EQ(streamed.keys, whole->keys);
  EXPECT_EQ(streamed.thumbnails, whole->thumbnails);
  for (const std::string& t : streamed.thumbnails) EXPECT_FALSE(t.empty());
  EXPECT_EQ(report.summary(), whole_report.summary());
  EXPECT_EQ(report.skip_lines, whole_report.skip_lines);

  // From the middle (a resumed job): the rows of the files from there on.
  io::ImportReport tail_report;
  const io::Dataset tail = stream(9, 2, &tail_report);
  ASSERT_FALSE(tail.keys.empty());
  const size_t skip = whole->keys.size() - tail.keys.size();
  EXPECT_EQ(std::vector<std::string>(whole->keys.begin() + static_cast<ptrdiff_t>(skip),
                                     whole->keys.end()),
            tail.keys);

  // A reader dropped before its end stops its decoding and returns.
  { io::ImageReader dropped(*scan, settings, 0, 1); }
  // --strict ends the stream with the error naming the file.
  settings.strict = true;
  io::ImageReader strict(*scan, settings, 0, 4);
  imsat::Status failed = imsat::Status::ok();
  for (int i = 0; i < 10 && failed.is_ok(); ++i) {
    auto b = strict.next();
    if (!b.is_ok()) failed = b.status();
    if (b.is_ok() && b->files == 0) break;
  }
  EXPECT_EQ(failed.message().rfind("birds/broken.png: truncated", 0), 0u) << failed.to_string();
}

TEST_F(ImageFolderTest, FilesAtTheTopLevelLeaveTheDataUnlabelledAndLoadDatasetDispatches) {
  write(dir_ / "one.png", imsat::testing::png(4, 4, 3, pattern(4, 4, 3, 1)));
  write(dir_ / "sub/two.png", imsat::testing::png(4, 4, 3, pattern(4, 4, 3, 2)));
  io::ImageImport settings;
  settings.pipeline.channels = 3;
  settings.pipeline.size = 4;
  io::ImportReport report;
  auto d = io::load_dataset(dir_.string(), "", settings, &report);
  ASSERT_TRUE(d.is_ok()) << d.status().to_string();
  EXPECT_EQ(d->rows, 2u);
  EXPECT_TRUE(d->labels.empty());
  EXPECT_EQ(d->cols, 48u);
  EXPECT_EQ(report.summary(), "read 2, skipped 0");
  EXPECT_FALSE(io::load_dataset(dir_.string(), "labels.idx", settings, nullptr).is_ok());
  EXPECT_FALSE(io::read_image_folder((dir_ / "none").string(), settings, nullptr).is_ok());
}

TEST_F(ImageFolderTest, ManifestsCarryKeysLabelsAndMetadata) {
  write(dir_ / "img/a.png", imsat::testing::png(4, 4, 1, pattern(4, 4, 1, 1)));
  write(dir_ / "img/b.png", imsat::testing::png(4, 4, 1, pattern(4, 4, 1, 2)));
  write(dir_ / "img/c.png", imsat::testing::png(4, 4, 1, pattern(4, 4, 1, 3)));
  write(dir_ / "list.csv",
        "path,key,label,colour,price\n"
        "img/a.png,first,shoe,red,10\n"
        "img/b.png,second,bag,\"blue, dark\",12.5\n"
        "img/c.png,third,shoe,green,3\n");
  io::ImageImport settings;
  settings.pipeline.size = 4;
  settings.manifest = (dir_ / "list.csv").string();
  auto d = io::read_image_manifest(settings, nullptr);
  ASSERT_TRUE(d.is_ok()) << d.status().to_string();
  EXPECT_EQ(d->keys, (std::vector<std::string>{"first", "second", "third"}));
  EXPECT_EQ(d->label_names, (std::vector<std::string>{"bag", "shoe"}));
  EXPECT_EQ(d->labels, (std::vector<int32_t>{1, 0, 1}));
  EXPECT_NE(d->metadata[1].find("\"colour\":\"blue, dark\""), std::string::npos) << d->metadata[1];
  EXPECT_NE(d->metadata[1].find("\"path\":\"img/b.png\""), std::string::npos);

  write(dir_ / "list.jsonl",
        "{\"path\": \"img/a.png\", \"label\": 4, \"tags\": [\"x\"]}\n"
        "\n"
        "{\"path\": \"img/c.png\", \"label\": 7}\n");
  settings.manifest = (dir_ / "list.jsonl").string();
  d = io::read_image_manifest(settings, nullptr);
  ASSERT_TRUE(d.is_ok()) << d.status().to_string();
  EXPECT_EQ(d->keys, (std::vector<std::string>{"img/a.png", "img/c.png"}));
  EXPECT_EQ(d->labels, (std::vector<int32_t>{4, 7}));
  EXPECT_NE(d->metadata[0].find("\"tags\":[\"x\"]"), std::string::npos);

  auto refused = [&](const std::string& text, const std::string& needle) {
    write(dir_ / "bad.csv", text);
    settings.manifest = (dir_ / "bad.csv").string();
    auto r = io::read_image_manifest(settings, nullptr);
    ASSERT_FALSE(r.is_ok()) << text;
    EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().message();
  };
  refused("file,label\nimg/a.png,1\n", "no 'path' column");
  refused("path,key\nimg/a.png,k\nimg/b.png,k\n", "line 3: key 'k' appears twice");
  // Found by fuzz_readers: a value that is not UTF-8 threw from the JSON writer.
  refused("path,colour\nmissing.png,r\xd3x\n", "line 2: column 2 is not valid UTF-8 text");
  refused("path,label\nimg/a.png,1\nimg/b.png,shoe\n", "mix numbers and names");
  refused("path,label\nimg/a.png\n", "line 2: 1 fields");
}

}  // namespace
