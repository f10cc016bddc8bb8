// The `imsat` command line end to end: train -> encode -> index -> search on a small CSV, and the
// error paths (missing file, wrong dimension, model/store mismatch, bad hex) that must give one
// clear line on stderr and a non-zero exit.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>

#include "support/temp_dir_test.h"

namespace {

struct Outcome {
  int code = -1;
  std::string out, err;
};

class CliTest : public imsat::testing::TempDirTest {
 protected:
  // Runs imsat with `args` (shell words), capturing stdout and stderr.
  Outcome imsat(const std::string& args) {
    const std::string out = (dir_ / "stdout").string(), err = (dir_ / "stderr").string();
    const std::string cmd = std::string(IMSAT_BINARY) + " " + args + " >" + out + " 2>" + err;
    Outcome r;
    const int status = std::system(cmd.c_str());
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = slurp(out);
    r.err = slurp(err);
    return r;
  }
  static std::string slurp(const std::string& path) {
    std::ifstream in(path);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }
  // A CSV of `rows` items with `dims` features in 3 separated groups and a label column.
  std::string csv(const std::string& name, int rows, int dims) {
    const std::string path = (dir_ / name).string();
    std::ofstream f(path);
    std::mt19937 rng(7);
    std::normal_distribution<float> noise(0, 0.2f);
    for (int j = 0; j < dims; ++j) f << "f" << j << ",";
    f << "label\n";
    for (int i = 0; i < rows; ++i) {
      for (int j = 0; j < dims; ++j) f << (i % 3) * (j % 2 ? 2.0f : -1.5f) + noise(rng) << ",";
      f << i % 3 << "\n";
    }
    return path;
  }
  std::string path(const std::string& name) { return (dir_ / name).string(); }
};

// One error line naming the problem, last on stderr, and a non-zero exit.
void expect_clear_error(const Outcome& r, const std::string& needle) {
  EXPECT_NE(r.code, 0);
  const size_t at = r.err.find("imsat: error: ");
  ASSERT_NE(at, std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("imsat: error: ", at + 1), std::string::npos) << r.err;
  const std::string line = r.err.substr(at);
  EXPECT_NE(line.find(needle), std::string::npos) << r.err;
  EXPECT_EQ(std::count(line.begin(), line.end(), '\n'), 1) << r.err;
}

TEST_F(CliTest, TrainEncodeIndexSearch) {
  const std::string data = csv("items.csv", 300, 10);
  ASSERT_EQ(imsat("train --data " + data + " --method itq --bits 8 --quiet --out " +
                  path("m.model")).code,
            0);
  Outcome enc = imsat("encode --model " + path("m.model") + " --data " + data + " --out " +
                  path("c.codes") + " --quiet");
  ASSERT_EQ(enc.code, 0) << enc.err;
  // Index the codes file, then the raw data with the model and vectors into a second store.
  Outcome idx = imsat("index --data " + path("c.codes") + " --db " + path("db") + " --quiet");
  ASSERT_EQ(idx.code, 0) << idx.err;
  Outcome again = imsat("index --data " + path("c.codes") + " --db " + path("db") + " --quiet");
  EXPECT_EQ(again.code, 0);
  EXPECT_NE(again.err.find("already indexed"), std::string::npos) << again.err;
  Outcome raw = imsat("index --model " + path("m.model") + " --data " + data + " --db " +
                  path("db2") + " --with-vectors --quiet");
  ASSERT_EQ(raw.code, 0) << raw.err;

  Outcome s = imsat("search --db " + path("db") + " --key 3 -k 5 --json");
  ASSERT_EQ(s.code, 0) << s.err;
  nlohmann::json j = nlohmann::json::parse(s.out);
  ASSERT_EQ(j["hits"].size(), 5u);
  EXPECT_EQ(j["hits"][0]["distance"], 0);
  for (const auto& h : j["hits"]) EXPECT_EQ(h["label"], 0);  // item 3 is in group 0
  Outcome exact = imsat("search --db " + path("db2") + " --model " + path("m.model") +
                    " --query-file " + data + " --limit 2 -k 3 --rerank exact --json");
  ASSERT_EQ(exact.code, 0) << exact.err;
  // Several queries print one JSON document per line.
  std::vector<nlohmann::json> e;
  std::istringstream lines(exact.out);
  for (std::string line; std::getline(lines, line);) e.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(e.size(), 2u);
  EXPECT_EQ(e[0]["hits"][0]["key"], "0");  // the query is item 0 itself
  EXPECT_EQ(e[0]["hits"][0]["score"], 0.0);
  Outcome by_code = imsat("search --db " + path("db") + " --code " +
                      j["code"].get<std::string>() + " --radius 0");
  ASSERT_EQ(by_code.code, 0) << by_code.err;
  EXPECT_NE(by_code.out.find("rank"), std::string::npos);
}

TEST_F(CliTest, ErrorPathsAreOneClearLineAndNonZero) {
  const std::string data = csv("items.csv", 120, 6);
  const std::string other = csv("other.csv", 120, 5);
  expect_clear_error(imsat("index --model " + path("missing.model") + " --data " + data +
                           " --db " + path("db")),
                     "missing.model");
  expect_clear_error(imsat("encode --model " + path("m.model") + " --data " +
                           path("nothing.csv") + " --out " + path("x")),
                     "m.model");
  ASSERT_EQ(imsat("train --data " + data + " --method lsh --bits 8 --quiet --out " +
                  path("m.model")).code,
            0);
  ASSERT_EQ(imsat("train --data " + data + " --method lsh --bits 8 --seed 9 --quiet --out " +
                  path("m2.model")).code,
            0);
  expect_clear_error(imsat("index --model " + path("m.model") + " --data " + other + " --db " +
                           path("db")),
                     "5 values, the model expects 6");
  EXPECT_FALSE(std::filesystem::exists(path("db")));  // nothing created on a failed index
  ASSERT_EQ(imsat("index --model " + path("m.model") + " --data " + data + " --db " +
                  path("db") + " --quiet").code,
            0);
  expect_clear_error(imsat("search --db " + path("db") + " --model " + path("m2.model") +
                           " --query-file " + data),
                     "built with model");
  expect_clear_error(imsat("search --db " + path("db") + " --code abc"), "hex code has 3 digits");
  expect_clear_error(imsat("search --db " + path("db") + " --code zz"), "non-hex character 'z'");
  expect_clear_error(imsat("search --db " + path("db") + " --key nope"), "nope");
  expect_clear_error(imsat("search --db " + path("no-store") + " --key 1"), "no-store");
  expect_clear_error(imsat("search --db " + path("db") + " --query-file " + data),
                     "--query-file needs --model");
  // A usage error (unknown flag) is also non-zero.
  EXPECT_NE(imsat("search --db " + path("db") + " --bogus").code, 0);
}

}  // namespace
