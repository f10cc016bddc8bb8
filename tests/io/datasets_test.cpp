#include "io/datasets.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "support/temp_dir_test.h"

namespace {

namespace fs = std::filesystem;
using imsat::Status;
using imsat::io::Dataset;

class DatasetsTest : public imsat::testing::TempDirTest {
 protected:
  std::string write(const std::string& name, const std::string& bytes) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }
  std::string write_gz(const std::string& name, const std::string& bytes) {
    const std::string path = (dir_ / name).string();
    gzFile f = gzopen(path.c_str(), "wb");
    gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
    gzclose(f);
    return path;
  }
};

std::string be32(uint32_t v) {
  return std::string{static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                     static_cast<char>(v >> 8), static_cast<char>(v)};
}

// An IDX image file of n items of 2x3 pixels with value (i * 6 + j) % 256.
std::string idx_images(uint32_t n) {
  std::string b = std::string("\0\0\x08\x03", 4) + be32(n) + be32(2) + be32(3);
  for (uint32_t i = 0; i < n * 6; ++i) b.push_back(static_cast<char>(i % 256));
  return b;
}
std::string idx_labels(uint32_t n) {
  std::string b = std::string("\0\0\x08\x01", 4) + be32(n);
  for (uint32_t i = 0; i < n; ++i) b.push_back(static_cast<char>(i % 10));
  return b;
}

template <typename T>
std::string vecs(const std::vector<std::vector<T>>& rows) {
  std::string b;
  for (const auto& r : rows) {
    int32_t d = static_cast<int32_t>(r.size());
    b.append(reinterpret_cast<const char*>(&d), 4);
    b.append(reinterpret_cast<const char*>(r.data()), r.size() * sizeof(T));
  }
  return b;
}

bool mentions(const Status& s, const std::string& text) {
  return s.message().find(text) != std::string::npos;
}

TEST_F(DatasetsTest, IdxPlainAndGzipReadTheSameWithLabels) {
  const std::string plain = write("imgs-idx3-ubyte", idx_images(4));
  const std::string gz = write_gz("imgs-idx3-ubyte.gz", idx_images(4));
  const std::string labels = write("labels-idx1-ubyte", idx_labels(4));
  for (const std::string& path : {plain, gz}) {
    auto d = imsat::io::read_idx(path, labels);
    ASSERT_TRUE(d.is_ok()) << d.status().to_string();
    EXPECT_EQ(d->rows, 4u);
    EXPECT_EQ(d->cols, 6u);
    EXPECT_EQ(d->item_shape, (std::vector<size_t>{2, 3}));
    EXPECT_TRUE(d->uint8_pixels);
    EXPECT_EQ(d->values[7], 7.0f);
    EXPECT_EQ(d->labels, (std::vector<int32_t>{0, 1, 2, 3}));
  }
}

TEST_F(DatasetsTest, TruncatedIdxNamesFileAndOffset) {
  std::string bytes = idx_images(4);
  bytes.resize(bytes.size() - 5);
  const std::string path = write("short-idx3-ubyte", bytes);
  auto d = imsat::io::read_idx(path);
  ASSERT_FALSE(d.is_ok());
  EXPECT_EQ(d.status().code(), Status::Code::kCorruption);
  EXPECT_TRUE(mentions(d.status(), path)) << d.status().message();
  EXPECT_TRUE(mentions(d.status(), "byte 35")) << d.status().message();
  EXPECT_TRUE(mentions(d.status(), "expected 40 bytes")) << d.status().message();
}

TEST_F(DatasetsTest, TruncatedGzipIsAnError) {
  const std::string gz = write_gz("full.gz", idx_images(200));
  std::string bytes;
  {
    std::ifstream in(gz, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  const std::string cut = write("cut-idx3-ubyte.gz", bytes.substr(0, bytes.size() / 2));
  auto d = imsat::io::read_idx(cut);
  ASSERT_FALSE(d.is_ok());
  EXPECT_TRUE(mentions(d.status(), cut)) << d.status().message();
}

TEST_F(DatasetsTest, IdxBadMagicAndMissingFile) {
  auto bad = imsat::io::read_idx(write("bad", "\x01\x02\x03\x04garbage"));
  ASSERT_FALSE(bad.is_ok());
  EXPECT_TRUE(mentions(bad.status(), "not an IDX file")) << bad.status().message();
  auto missing = imsat::io::read_idx((dir_ / "nope").string());
  ASSERT_FALSE(missing.is_ok());
  EXPECT_EQ(missing.status().code(), Status::Code::kNotFound);
}

TEST_F(DatasetsTest, LabelCountMismatchIsAnError) {
  auto d = imsat::io::read_idx(write("i", idx_images(4)), write("l", idx_labels(3)));
  ASSERT_FALSE(d.is_ok());
  EXPECT_TRUE(mentions(d.status(), "3 labels")) << d.status().message();
}

TEST_F(DatasetsTest, LabelFileGivenAsImagesIsAnError) {
  auto d = imsat::io::read_idx(write("l", idx_labels(3)));
  ASSERT_FALSE(d.is_ok());
  EXPECT_TRUE(mentions(d.status(), "one dimension")) << d.status().message();
}

TEST_F(DatasetsTest, FolderWithStandardNamesConcatenatesTrainThenTest) {
  write_gz("train-images-idx3-ubyte.gz", idx_images(5));
  write_gz("train-labels-idx1-ubyte.gz", idx_labels(5));
  write("t10k-images-idx3-ubyte", idx_images(3));
  write("t10k-labels-idx1-ubyte", idx_labels(3));
  auto d = imsat::io::load_dataset(dir_.string());
  ASSERT_TRUE(d.is_ok()) << d.status().to_string();
  EXPECT_EQ(d->rows, 8u);
  EXPECT_EQ(d->train_rows, 5u);
  EXPECT_EQ(d->labels, (std::vector<int32_t>{0, 1, 2, 3, 4, 0, 1, 2}));
}

TEST_F(DatasetsTest, FvecsBvecsIvecsRead) {
  auto f = imsat::io::load_dataset(
      write("a.fvecs", vecs<float>({{1.5f, 2.5f}, {3.f, -4.f}, {0.f, 1.f}})));
  ASSERT_TRUE(f.is_ok()) << f.status().to_string();
  EXPECT_EQ(f->rows, 3u);
  EXPECT_EQ(f->cols, 2u);
  EXPECT_EQ(f->values[3], -4.f);
  EXPECT_FALSE(f->uint8_pixels);
  auto b = imsat::io::load_dataset(write("a.bvecs", vecs<uint8_t>({{1, 255, 3}, {4, 5, 6}})));
  ASSERT_TRUE(b.is_ok()) << b.status().to_string();
  EXPECT_EQ(b->values[1], 255.f);
  auto i = imsat::io::load_dataset(write("a.ivecs", vecs<int32_t>({{7}, {-9}})));
  ASSERT_TRUE(i.is_ok()) << i.status().to_string();
  EXPECT_EQ(i->values[1], -9.f);
}

TEST_F(DatasetsTest, VecsErrorsNameOffsetAndExpectation) {
  std::string bytes = vecs<float>({{1, 2, 3}, {4, 5, 6}});
  auto truncated = imsat::io::read_fvecs(write("t.fvecs", bytes.substr(0, bytes.size() - 2)));
  ASSERT_FALSE(truncated.is_ok());
  EXPECT_TRUE(mentions(truncated.status(), "byte 20")) << truncated.status().message();
  EXPECT_TRUE(mentions(truncated.status(), "expected 12 bytes")) << truncated.status().message();
  auto ragged = imsat::io::read_fvecs(write("r.fvecs", vecs<float>({{1, 2, 3}, {4, 5}})));
  ASSERT_FALSE(ragged.is_ok());
  EXPECT_TRUE(mentions(ragged.status(), "dimension 2, expected 3")) << ragged.status().message();
  float nan = std::numeric_limits<float>::quiet_NaN();
  auto with_nan = imsat::io::read_fvecs(write("n.fvecs", vecs<float>({{1, nan}})));
  ASSERT_FALSE(with_nan.is_ok());
  EXPECT_TRUE(mentions(with_nan.status(), "not a finite number")) << with_nan.status().message();
}

TEST_F(DatasetsTest, CsvWithHeaderAndLabelColumn) {
  auto d = imsat::io::read_csv(write("d.csv", "x,label,y\n1,3,2\n-1.5,4,1e2\n"));
  ASSERT_TRUE(d.is_ok()) << d.status().to_string();
  EXPECT_EQ(d->rows, 2u);
  EXPECT_EQ(d->cols, 2u);
  EXPECT_EQ(d->values, (std::vector<float>{1, 2, -1.5f, 100}));
  EXPECT_EQ(d->labels, (std::vector<int32_t>{3, 4}));
}

TEST_F(DatasetsTest, CsvWithoutHeaderHasNoLabels) {
  auto d = imsat::io::read_csv(write("d.csv", "1,2\n3,4\n"));
  ASSERT_TRUE(d.is_ok()) << d.status().to_string();
  EXPECT_EQ(d->rows, 2u);
  EXPECT_TRUE(d->labels.empty());
}

TEST_F(DatasetsTest, CsvErrorsNameLineAndColumn) {
  auto nan = imsat::io::read_csv(write("a.csv", "a,b\n1,2\n3,nan\n"));
  ASSERT_FALSE(nan.is_ok());
  EXPECT_TRUE(mentions(nan.status(), "a.csv:3: column 2")) << nan.status().message();
  auto text = imsat::io::read_csv(write("b.csv", "1,2\n3,x\n"));
  ASSERT_FALSE(text.is_ok());
  EXPECT_TRUE(mentions(text.status(), "b.csv:2: column 2 is not a number"))
      << text.status().message();
  auto width = imsat::io::read_csv(write("c.csv", "1,2\n3,4,5\n"));
  ASSERT_FALSE(width.is_ok());
  EXPECT_TRUE(mentions(width.status(), "expected 2 columns, found 3")) << width.status().message();
  auto label = imsat::io::read_csv(write("d.csv", "label,a\n1.5,2\n"));
  ASSERT_FALSE(label.is_ok());
  EXPECT_TRUE(mentions(label.status(), "label is not a non-negative 32-bit integer"))
      << label.status().message();
  // Found by fuzz_readers: values beyond int32 / float made the conversions undefined.
  auto huge_label = imsat::io::read_csv(write("e.csv", "a,label\n1,2\n3,5e91\n"));
  EXPECT_TRUE(mentions(huge_label.status(), "e.csv:3: label is not a non-negative"))
      << huge_label.status().message();
  auto negative = imsat::io::read_csv(write("f.csv", "a,label\n1,-2\n"));
  EXPECT_FALSE(negative.is_ok());
  auto huge_value = imsat::io::read_csv(write("g.csv", "a,b\n1,1e300\n"));
  EXPECT_TRUE(mentions(huge_value.status(), "g.csv:2: column 2 is outside the float range"))
      << huge_value.status().message();
}

// Embeddings as users save them: every .npy element type and order NumPy writes, .npz archives
// (plain and compressed) with their labels, and a clear error for what is not read.
TEST_F(DatasetsTest, NumpyArraysAndArchivesReadAsUsersSaveThem) {
  const std::string cmd = "/usr/bin/python3 " + std::string(IMSAT_TEST_SOURCE_DIR) +
                          "/io/make_numpy_files.py " + dir_.string();
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd << " failed (is python3-numpy installed?)";
  auto path = [&](const std::string& name) { return (dir_ / name).string(); };
  std::vector<float> expect(12);
  for (size_t i = 0; i < expect.size(); ++i) expect[i] = static_cast<float>(i) / 4.0f;
  for (const char* name : {"f32.npy", "f16.npy", "f64_fortran.npy"}) {
    auto d = imsat::io::load_dataset(path(name));
    ASSERT_TRUE(d.is_ok()) << name << ": " << d.status().to_string();
    EXPECT_EQ(d->rows, 4u) << name;
    EXPECT_EQ(d->cols, 3u) << name;
    EXPECT_EQ(d->values, expect) << name;
  }
  auto u8 = imsat::io::load_dataset(path("u8.npy"));
  ASSERT_TRUE(u8.is_ok());
  EXPECT_EQ(u8->values[5], 5.0f);
  auto i8 = imsat::io::load_dataset(path("i8.npy"));
  ASSERT_TRUE(i8.is_ok());
  EXPECT_EQ(i8->values[5], -5.0f);
  auto labelled = imsat::io::load_dataset(path("f32.npy"), path("labels.npy"));
  ASSERT_TRUE(labelled.is_ok()) << labelled.status().to_string();
  EXPECT_EQ(labelled->labels, (std::vector<int32_t>{0, 2, 1, 2}));

  auto plain = imsat::io::load_dataset(path("plain.npz"));
  ASSERT_TRUE(plain.is_ok()) << plain.status().to_string();
  EXPECT_EQ(plain->values, expect);
  EXPECT_EQ(plain->labels, (std::vector<int32_t>{0, 2, 1, 2}));
  auto compressed = imsat::io::load_dataset(path("compressed.npz"));
  ASSERT_TRUE(compressed.is_ok()) << compressed.status().to_string();
  EXPECT_EQ(compressed->values, expect);
  EXPECT_TRUE(compressed->labels.empty());

  auto refused = [&](const std::string& name, const std::string& needle) {
    auto d = imsat::io::load_dataset(path(name));
    ASSERT_FALSE(d.is_ok()) << name;
    EXPECT_TRUE(mentions(d.status(), needle)) << name << ": " << d.status().message();
  };
  refused("ambiguous.npz", "cannot tell which array holds the items");
  refused("cube.npy", "3-D array");
  refused("nan.npy", "row 2, column 1 is not a finite number");
  refused("big_endian.npy", "big-endian");
  refused("complex.npy", "float32, float16, float64, uint8 and int8");
  // A file cut short, and a file of no known format, say so.
  std::string bytes;
  {
    std::ifstream in(path("f32.npy"), std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  write("cut.npy", bytes.substr(0, bytes.size() - 5));
  refused("cut.npy", "bytes of data");
  write("notes.txt", "hello");
  refused("notes.txt", ".npy and .npz arrays");
  refused("missing.npy", "no such file");
}

}  // namespace
