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
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <string>

#include "support/png.h"
#include "support/temp_dir_test.h"

namespace {

struct Outcome {
  int code = -1;
  std::string out, err;
};

class CliTest : public imsat::testing::TempDirTest {
 protected:
  // Runs imsat with `args` (shell words), capturing stdout and stderr.
  Outcome imsat(const std::string& args) { return imsat_with(IMSAT_BINARY, args); }
  Outcome imsat_with(const std::string& program, const std::string& args) {
    const std::string out = (dir_ / "stdout").string(), err = (dir_ / "stderr").string();
    const std::string cmd = program + " " + args + " >" + out + " 2>" + err;
    Outcome r;
    const int status = std::system(cmd.c_str());
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = slurp(out);
    r.err = slurp(err);
    return r;
  }
  // imsat killed by SIGKILL just before its `nth_rename`th rename system call (if it makes that
  // many): a crash at that point.
  Outcome imsat_under_strace(int nth_rename, const std::string& args) {
    return imsat_with("strace -f -qq -o /dev/null -e trace=rename -e inject=rename:signal=" +
                          std::string("SIGKILL:when=") + std::to_string(nth_rename) + " " +
                          IMSAT_BINARY,
                      args);
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
  // A .npy file as numpy.save writes it (format 1.0, little-endian), holding `values` in `shape`.
  template <typename T>
  std::string npy(const std::string& name, const std::string& descr, std::vector<size_t> shape,
                  const std::vector<T>& values) {
    std::string dims;
    for (size_t d : shape) dims += std::to_string(d) + ", ";
    if (shape.size() > 1) dims.resize(dims.size() - 2);
    std::string header =
        "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (" + dims + "), }";
    while ((10 + header.size() + 1) % 64 != 0) header += ' ';
    header += '\n';
    std::string bytes = std::string("\x93NUMPY\x01\x00", 8);
    bytes += static_cast<char>(header.size() & 0xff);
    bytes += static_cast<char>(header.size() >> 8);
    bytes += header;
    bytes.append(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
    std::ofstream(path(name), std::ios::binary) << bytes;
    return path(name);
  }
  // Trains an 8-bit `method` model on `data` (path("m.model")) and indexes it into path("db").
  void train_and_index(const std::string& data, const std::string& method) {
    Outcome t = imsat("train --data " + data + " --method " + method + " --bits 8 --quiet --out " +
                      path("m.model"));
    ASSERT_EQ(t.code, 0) << t.err;
    Outcome i = imsat("index --model " + path("m.model") + " --data " + data + " --db " +
                      path("db") + " --quiet");
    ASSERT_EQ(i.code, 0) << i.err;
  }
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
  ASSERT_EQ(
      imsat("train --data " + data + " --method itq --bits 8 --quiet --out " + path("m.model"))
          .code,
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
  Outcome by_code = imsat("search --db " + path("db") + " --code " + j["code"].get<std::string>() +
                          " --radius 0");
  ASSERT_EQ(by_code.code, 0) << by_code.err;
  EXPECT_NE(by_code.out.find("rank"), std::string::npos);
  // A query to encode without --model uses the model the store was indexed with.
  Outcome recorded =
      imsat("search --db " + path("db2") + " --query-file " + data + " --limit 1 -k 1 --json");
  ASSERT_EQ(recorded.code, 0) << recorded.err;
  EXPECT_EQ(nlohmann::json::parse(recorded.out)["hits"][0]["key"], "0");
}

// Embeddings as users save them (.npy, labels in a .npy) through train, index, eval and a search
// by a .npy of queries that names no model; and the first-hour errors say what is wrong: a file
// of an unknown format lists the formats, a missing or folder image says why, a gallery smaller
// than N for precision@N is warned about, a plot of a folder given with a trailing slash is
// titled with the folder's name.
TEST_F(CliTest, NumpyEmbeddingsTrainIndexAndSearchAndFirstHourErrorsSayWhy) {
  const size_t rows = 90, dims = 8;
  std::vector<float> x(rows * dims);
  std::vector<int64_t> y(rows);
  std::mt19937 rng(3);
  std::normal_distribution<float> noise(0, 0.2f);
  for (size_t i = 0; i < rows; ++i) {
    y[i] = static_cast<int64_t>(i % 3);
    for (size_t j = 0; j < dims; ++j)
      x[i * dims + j] = float(i % 3) * (j % 2 ? 2.f : -1.5f) + noise(rng);
  }
  const std::string emb = npy<float>("emb.npy", "<f4", {rows, dims}, x);
  const std::string labels = npy<int64_t>("labels.npy", "<i8", {rows}, y);
  Outcome train = imsat("train --data " + emb + " --method itq --bits 8 --out " + path("e.model"));
  ASSERT_EQ(train.code, 0) << train.err;
  Outcome index = imsat("index --model " + path("e.model") + " --data " + emb + " --labels " +
                        labels + " --db " + path("edb") + " --with-vectors --quiet");
  ASSERT_EQ(index.code, 0) << index.err;
  Outcome eval = imsat("eval --db " + path("edb"));
  ASSERT_EQ(eval.code, 0) << eval.err;
  EXPECT_NE(eval.out.find("figures in percent"), std::string::npos) << eval.out;
  EXPECT_NE(eval.err.find("fewer than 500"), std::string::npos) << eval.err;
  Outcome search = imsat("search --db " + path("edb") + " --query-file " + emb +
                         " --limit 1 -k 3 --rerank exact --json");
  ASSERT_EQ(search.code, 0) << search.err;
  EXPECT_EQ(nlohmann::json::parse(search.out)["hits"][0]["key"], "0");
  EXPECT_EQ(nlohmann::json::parse(search.out)["hits"][0]["label"], 0);

  std::ofstream(path("notes.txt")) << "hello";
  expect_clear_error(imsat("train --data " + path("notes.txt") + " --bits 8 --out " + path("x")),
                     ".npy and .npz arrays");
  expect_clear_error(imsat("search --db " + path("edb") + " --image " + path("gone.png")),
                     "gone.png: cannot read: No such file or directory");
  expect_clear_error(imsat("search --db " + path("edb") + " --image " + dir_.string()),
                     "is a directory, not an image file");
  // A folder given with a trailing slash (the default dataset's IDX folder).
  Outcome plot = imsat(
      "eval --data /usr/share/datasets/fashion-mnist/ --methods lsh --bits 8 "
      "--quiet --plot " +
      path("pr.svg"));
  ASSERT_EQ(plot.code, 0) << plot.err;
  EXPECT_NE(slurp(path("pr.svg")).find("Hamming ranking, fashion-mnist"), std::string::npos);
}

TEST_F(CliTest, ErrorPathsAreOneClearLineAndNonZero) {
  const std::string data = csv("items.csv", 120, 6);
  const std::string other = csv("other.csv", 120, 5);
  expect_clear_error(
      imsat("index --model " + path("missing.model") + " --data " + data + " --db " + path("db")),
      "missing.model");
  expect_clear_error(imsat("encode --model " + path("m.model") + " --data " + path("nothing.csv") +
                           " --out " + path("x")),
                     "m.model");
  ASSERT_EQ(
      imsat("train --data " + data + " --method lsh --bits 8 --quiet --out " + path("m.model"))
          .code,
      0);
  ASSERT_EQ(imsat("train --data " + data + " --method lsh --bits 8 --seed 9 --quiet --out " +
                  path("m2.model"))
                .code,
            0);
  expect_clear_error(
      imsat("index --model " + path("m.model") + " --data " + other + " --db " + path("db")),
      "5 values, the model expects 6");
  EXPECT_FALSE(std::filesystem::exists(path("db")));  // nothing created on a failed index
  ASSERT_EQ(imsat("index --model " + path("m.model") + " --data " + data + " --db " + path("db") +
                  " --quiet")
                .code,
            0);
  expect_clear_error(
      imsat("search --db " + path("db") + " --model " + path("m2.model") + " --query-file " + data),
      "built with model");
  expect_clear_error(imsat("serve --follow-snapshot " + path("no-snapshot") + " --port 0"),
                     "no-snapshot: no such snapshot or store folder");
  EXPECT_EQ(imsat("serve --follow-snapshot " + path("db") + " --db " + path("db")).code, 2);
  expect_clear_error(imsat("search --db " + path("db") + " --code abc"), "hex code has 3 digits");
  expect_clear_error(imsat("search --db " + path("db") + " --code zz"), "non-hex character 'z'");
  expect_clear_error(imsat("search --db " + path("db") + " --key nope"), "nope");
  expect_clear_error(imsat("search --db " + path("no-store") + " --key 1"), "no-store");
  // Without --model the store's own model encodes the query; once that file is gone, the error
  // says so.
  EXPECT_EQ(imsat("search --db " + path("db") + " --query-file " + data + " --limit 1").code, 0);
  std::filesystem::rename(path("m.model"), path("moved.model"));
  expect_clear_error(
      imsat("search --db " + path("db") + " --query-file " + data),
      "was indexed with the model " + path("m.model") + ", which is no longer there; pass --model");
  std::filesystem::rename(path("moved.model"), path("m.model"));
  // A usage error (unknown flag) is also non-zero.
  EXPECT_NE(imsat("search --db " + path("db") + " --bogus").code, 0);
  // Training options reach training: affine augmentation is refused for feature vectors.
  expect_clear_error(imsat("train --data " + data + " --bits 8 --epochs 1 --augment affine --out " +
                           path("a.model")),
                     "affine augmentation needs images");
  // --init itq reaches training: the model file records the shortcut; clustering refuses it.
  ASSERT_EQ(imsat("train --data " + data + " --bits 8 --epochs 1 --init itq --quiet --out " +
                  path("i.model"))
                .code,
            0);
  std::ifstream model_file(path("i.model"), std::ios::binary);
  const std::string model_bytes((std::istreambuf_iterator<char>(model_file)),
                                std::istreambuf_iterator<char>());
  EXPECT_NE(model_bytes.find("\"shortcut\":true"), std::string::npos);
  EXPECT_NE(model_bytes.find("\"init\":\"itq\""), std::string::npos);
  expect_clear_error(imsat("train --data " + data + " --clusters 3 --epochs 1 --init itq --out " +
                           path("c.model")),
                     "--init itq");
  // A run whose codes are all the same (identical items) is reported; one over three groups is
  // not called collapsed.
  const std::string same = path("same.csv");
  {
    std::ofstream f(same);
    for (int i = 0; i < 60; ++i) f << "1,2,3,4,5,6\n";
  }
  const Outcome collapsed =
      imsat("train --data " + same + " --bits 8 --epochs 1 --quiet --out " + path("s.model"));
  EXPECT_EQ(collapsed.code, 0) << collapsed.err;
  EXPECT_NE(collapsed.err.find("warning: the run collapsed"), std::string::npos) << collapsed.err;
  const Outcome healthy =
      imsat("train --data " + data + " --bits 8 --epochs 30 --quiet --out " + path("h.model"));
  EXPECT_EQ(healthy.err.find("collapsed"), std::string::npos) << healthy.err;
  // --auto reaches training too: 120 items are too few for its held-out split.
  expect_clear_error(imsat("train --data " + data + " --bits 8 --auto --out " + path("a.model")),
                     "500 items");
  // The search's criterion only with the search.
  const Outcome lone = imsat("train --data " + data +
                             " --bits 8 --auto-criterion agreement --out " + path("c.model"));
  EXPECT_EQ(lone.code, 2);
  expect_clear_error(lone, "--auto-criterion requires --auto");
  expect_clear_error(imsat("train --data " + data +
                           " --bits 8 --auto --auto-criterion labels "
                           "--out " +
                           path("c.model")),
                     "--auto-criterion");
  // The search's grid only with the search, and only positive.
  EXPECT_EQ(
      imsat("train --data " + data + " --bits 8 --auto-steps 100 --out " + path("c.model")).code,
      2);
  expect_clear_error(imsat("train --data " + data +
                           " --bits 8 --auto --auto-lambdas 0.1,-1 --out " + path("c.model")),
                     "--auto-lambdas");
  // A known criterion gets past the options to the search itself (which needs 500 items).
  expect_clear_error(
      imsat("train --data " + data +
            " --bits 8 --auto --auto-criterion overlap --auto-lambdas 0.1,0.4 --auto-eps-scales 1 "
            "--auto-steps 1000,500 --out " +
            path("c.model")),
      "500 items");
}

// Eval --auto with a grid from the command line reports the search's choice and every
// trial it scored in its JSON; on feature vectors the criterion is neighbour overlap unless
// --auto-criterion says otherwise.
TEST_F(CliTest, EvalAutoReportsTheSearchGivenOnTheCommandLine) {
  const std::string data = csv("items.csv", 600, 6);
  const Outcome r = imsat("eval --data " + data +
                          " --methods imsat-vat --bits 8 --threads 1 --quiet --json --auto "
                          "--auto-eps-scales 1 --auto-lambdas 0.2,0.05 --auto-steps 40,20");
  ASSERT_EQ(r.code, 0) << r.err;
  const nlohmann::json out = nlohmann::json::parse(r.out);
  ASSERT_EQ(out["results"].size(), 1u) << r.out;
  // Both rankings, the asymmetric one named by its score.
  EXPECT_EQ(out["results"][0]["asymmetric"]["score"], "negative log-likelihood") << r.out;
  EXPECT_TRUE(out["results"][0]["asymmetric"]["map"].is_number()) << r.out;
  const nlohmann::json& a = out["results"][0]["settings"]["auto"];
  EXPECT_EQ(a["criterion"], "neighbour overlap");
  EXPECT_EQ(a["eps_scale"], 1.0);
  ASSERT_GE(a["trials"].size(), 2u) << a.dump();  // at least one checkpoint per weight
  std::set<double> weights;
  for (const nlohmann::json& t : a["trials"]) {
    weights.insert(t["lambda"].get<double>());
    EXPECT_EQ(t["eps_scale"], 1.0);
    EXPECT_TRUE(t["steps"] == 20 || t["steps"] == 40) << t.dump();
    EXPECT_GE(t["score"].get<double>(), 0.0);
    EXPECT_LE(t["score"].get<double>(), 1.0);
  }
  EXPECT_EQ(weights, (std::set<double>{0.05, 0.2}));
}

// The command-line conventions.
TEST_F(CliTest, VersionExitCodesAndJsonOnStdout) {
  Outcome v = imsat("--version");
  EXPECT_EQ(v.code, 0);
  EXPECT_EQ(v.out, std::string("imsat ") + IMSAT_VERSION + "\n");
  // Usage errors exit 2 with one line saying what was expected; runtime errors exit 1.
  Outcome bad_bits = imsat("eval --data x.csv --bits 16,x");
  EXPECT_EQ(bad_bits.code, 2);
  EXPECT_NE(bad_bits.err.find("--bits: expected an integer, got 'x'"), std::string::npos)
      << bad_bits.err;
  Outcome odd_bits = imsat("train --data x.csv --bits 12 --out m");
  EXPECT_EQ(odd_bits.code, 2);
  EXPECT_NE(odd_bits.err.find("multiple of 8"), std::string::npos) << odd_bits.err;
  EXPECT_EQ(imsat("search --db " + path("db") + " --bogus").code, 2);
  EXPECT_EQ(imsat("eval --data x.csv --methods imsat-vat,nope").code, 2);
  EXPECT_EQ(imsat("search --db " + path("db")).code, 2);  // no query given
  Outcome missing = imsat("search --db " + path("no-store") + " --key 1");
  EXPECT_EQ(missing.code, 1);
  expect_clear_error(missing, "no-store");
  Outcome info = imsat("info --json");
  ASSERT_EQ(info.code, 0) << info.err;
  const nlohmann::json j = nlohmann::json::parse(info.out);
  EXPECT_EQ(j["version"], IMSAT_VERSION);
  EXPECT_TRUE(j.contains("hamming_kernel"));
}

TEST_F(CliTest, EvalOfAStoreAndInspectAndClusterAsJson) {
  const std::string data = csv("items.csv", 300, 10);
  ASSERT_NO_FATAL_FAILURE(train_and_index(data, "itq"));
  Outcome e = imsat("eval --db " + path("db") + " --queries-per-class 10 --precision-at 50 " +
                    "--radius 1 --json");
  ASSERT_EQ(e.code, 0) << e.err;
  const nlohmann::json store = nlohmann::json::parse(e.out);
  EXPECT_EQ(store["queries"], 30);
  EXPECT_EQ(store["labelled_items"], 300);
  EXPECT_TRUE(store.contains("precision_at_50"));
  EXPECT_TRUE(store.contains("precision_at_r1"));
  EXPECT_GT(store["map"].get<double>(), 0.5);  // three well-separated groups
  // The same protocol through the data path gives the same figures for the loaded model, and its
  // record shows the seed it was trained with (not 0 for every model).
  ASSERT_EQ(imsat("train --data " + data + " --method lsh --bits 8 --seed 5 --quiet --out " +
                  path("lsh.model"))
                .code,
            0);
  Outcome d = imsat("eval --data " + data + " --model " + path("m.model") + " --model " +
                    path("lsh.model") + " --queries-per-class 10 --precision-at 50 --radius 1 " +
                    "--json --quiet");
  ASSERT_EQ(d.code, 0) << d.err;
  const nlohmann::json direct = nlohmann::json::parse(d.out);
  ASSERT_EQ(direct["results"].size(), 2u);
  EXPECT_DOUBLE_EQ(direct["results"][0]["map"].get<double>(), store["map"].get<double>());
  EXPECT_EQ(direct["results"][0]["seed"], 0);
  EXPECT_EQ(direct["results"][1]["seed"], 5);
  Outcome inspect = imsat("inspect --db " + path("db") + " --json --verify");
  ASSERT_EQ(inspect.code, 0) << inspect.err;
  const nlohmann::json ins = nlohmann::json::parse(inspect.out);
  EXPECT_EQ(ins["items"], 300);
  EXPECT_EQ(ins["health"]["bit_balance"].size(), 8u);
  EXPECT_EQ(ins["verified"], true);
  Outcome cl = imsat("cluster --data " + data + " --method kmeans --clusters 3 --json --quiet");
  ASSERT_EQ(cl.code, 0) << cl.err;
  const nlohmann::json c = nlohmann::json::parse(cl.out);
  EXPECT_EQ(c["cluster_sizes"].size(), 3u);
  EXPECT_GT(c["accuracy"].get<double>(), 0.9);
}

// The resume record covers everything that changes the result, and a different source
// over existing keys needs --overwrite.
TEST_F(CliTest, IndexingAnotherSourceOverExistingKeysNeedsOverwrite) {
  const std::string data = csv("items.csv", 120, 6);
  const std::string other = csv("other.csv", 90, 6);
  ASSERT_EQ(
      imsat("train --data " + data + " --method lsh --bits 8 --quiet --out " + path("m.model"))
          .code,
      0);
  const std::string base = "index --model " + path("m.model") + " --db " + path("db") + " --quiet";
  ASSERT_EQ(imsat(base + " --data " + data).code, 0);
  // The same source again is already done; with vectors it is a new job over the same keys.
  EXPECT_NE(imsat(base + " --data " + data).err.find("already indexed"), std::string::npos);
  expect_clear_error(imsat(base + " --data " + data + " --with-vectors"), "--overwrite");
  expect_clear_error(imsat(base + " --data " + other), "--overwrite");
  // Beside them under another prefix, or replacing them when asked.
  EXPECT_EQ(imsat(base + " --data " + other + " --key-prefix o").code, 0);
  Outcome replaced = imsat(base + " --data " + other + " --overwrite");
  ASSERT_EQ(replaced.code, 0) << replaced.err;
  Outcome info = imsat("inspect --db " + path("db") + " --json");
  ASSERT_EQ(info.code, 0) << info.err;
  EXPECT_EQ(nlohmann::json::parse(info.out)["items"], 120 + 90);
}

// A truncated MANIFEST opened as an empty store and a read-only search deleted every
// table file. Now every command refuses it with one line and exit 1, changes no file, and
// `imsat repair` recovers the items and says how many were lost.
TEST_F(CliTest, ADamagedStoreIsRefusedUnchangedAndRepaired) {
  const std::string data = csv("items.csv", 600, 6);
  ASSERT_NO_FATAL_FAILURE(train_and_index(data, "lsh"));
  std::string manifest;
  for (const auto& e : std::filesystem::directory_iterator(path("db"))) {
    if (e.path().filename().string().rfind("MANIFEST-", 0) == 0) manifest = e.path().string();
  }
  ASSERT_FALSE(manifest.empty());
  std::filesystem::resize_file(manifest, std::filesystem::file_size(manifest) / 2);
  auto listing = [&] {
    std::map<std::string, uintmax_t> files;
    for (const auto& e : std::filesystem::directory_iterator(path("db"))) {
      files[e.path().filename().string()] = std::filesystem::file_size(e.path());
    }
    return files;
  };
  const auto before = listing();
  for (const std::string& cmd : {"search --db " + path("db") + " --key 0",
                                 "inspect --db " + path("db"), "eval --db " + path("db"),
                                 "index --model " + path("m.model") + " --data " + data + " --db " +
                                     path("db") + " --key-prefix x --quiet"}) {
    Outcome r = imsat(cmd);
    EXPECT_EQ(r.code, 1) << cmd;
    expect_clear_error(r, "MANIFEST");
    EXPECT_EQ(listing(), before) << cmd << " changed the store's files";
  }
  Outcome repaired = imsat("repair --db " + path("db") + " --json");
  ASSERT_EQ(repaired.code, 0) << repaired.err;
  const nlohmann::json r = nlohmann::json::parse(repaired.out);
  EXPECT_EQ(r["items_before"], 600);
  EXPECT_EQ(r["items_after"], 600);
  EXPECT_EQ(r["items_lost"], 0);
  EXPECT_TRUE(std::filesystem::exists(r["backup"].get<std::string>()));
  Outcome ok = imsat("inspect --db " + path("db") + " --verify --json");
  ASSERT_EQ(ok.code, 0) << ok.err;
  EXPECT_EQ(nlohmann::json::parse(ok.out)["items"], 600);
}

}  // namespace

namespace {

// A folder of image files through train, index, search by image and eval; the model
// records the pipeline, so the query image is transformed exactly as the indexed files were.
TEST_F(CliTest, AFolderOfImagesTrainsIndexesAndAnswersImageQueries) {
  std::mt19937 rng(3);
  const char* classes[] = {"boots", "cats", "maps"};
  for (int c = 0; c < 3; ++c) {
    std::filesystem::create_directories(dir_ / "photos" / classes[c]);
    for (int i = 0; i < 12; ++i) {
      const int w = 20 + i % 3, h = 14 + i % 5;
      std::vector<unsigned char> px(static_cast<size_t>(w * h * 3));
      for (int y = 0; y < h; ++y) {
        for (int x = 0; x < w; ++x) {
          for (int k = 0; k < 3; ++k) {
            const int base = (c == 0 ? x * 12 : c == 1 ? y * 16 : (x + y) % 2 * 255) + k * 20;
            px[static_cast<size_t>((y * w + x) * 3 + k)] =
                static_cast<unsigned char>(std::clamp(base + int(rng() % 40) - 20, 0, 255));
          }
        }
      }
      std::ofstream(dir_ / "photos" / classes[c] / (std::to_string(i) + ".png"), std::ios::binary)
          << imsat::testing::png(w, h, 3, px);
    }
  }
  std::ofstream(dir_ / "photos" / "cats" / "notes.txt") << "not an image";
  const std::string photos = path("photos");
  Outcome t = imsat("train --data " + photos +
                    " --method itq --bits 8 --channels 3 --image-size 12 --fit crop --quiet "
                    "--out " +
                    path("m.model"));
  ASSERT_EQ(t.code, 0) << t.err;
  EXPECT_NE(t.err.find("skipped cats/notes.txt: not an image"), std::string::npos) << t.err;
  EXPECT_NE(t.err.find("read 36, skipped 1 (not an image: 1)"), std::string::npos) << t.err;
  EXPECT_NE(t.err.find("on 36 items of 432 values"), std::string::npos) << t.err;

  Outcome i = imsat("index --model " + path("m.model") + " --data " + photos + " --db " +
                    path("db") + " --quiet");
  ASSERT_EQ(i.code, 0) << i.err;
  Outcome by_key = imsat("search --db " + path("db") + " --key cats/3.png -k 1 --json");
  ASSERT_EQ(by_key.code, 0) << by_key.err;
  const nlohmann::json k = nlohmann::json::parse(by_key.out);
  EXPECT_EQ(k["hits"][0]["metadata"]["label_name"], "cats");
  Outcome by_image = imsat("search --db " + path("db") + " --model " + path("m.model") +
                           " --image " + path("photos/cats/3.png") + " -k 36 --json");
  ASSERT_EQ(by_image.code, 0) << by_image.err;
  const nlohmann::json j = nlohmann::json::parse(by_image.out);
  EXPECT_EQ(j["code"], k["code"]);  // the same code as the indexed file
  bool found = false;
  for (const auto& h : j["hits"]) found |= h["key"] == "cats/3.png" && h["distance"] == 0;
  EXPECT_TRUE(found) << by_image.out;

  // Uneven data: the per-class count is a cap (half of 12), and label names are shown.
  Outcome e = imsat("eval --data " + photos + " --model " + path("m.model") + " --json");
  ASSERT_EQ(e.code, 0) << e.err;
  EXPECT_NE(e.err.find("0 (boots) 6, 1 (cats) 6, 2 (maps) 6"), std::string::npos) << e.err;
  const nlohmann::json ev = nlohmann::json::parse(e.out);
  EXPECT_EQ(ev["queries"], 18);
  EXPECT_EQ(ev["label_names"], nlohmann::json({"boots", "cats", "maps"}));
  // A features model refuses a folder of images with a clear error.
  const std::string data = csv("items.csv", 60, 5);
  ASSERT_EQ(
      imsat("train --data " + data + " --method lsh --bits 8 --quiet --out " + path("f.model"))
          .code,
      0);
  expect_clear_error(imsat("encode --model " + path("f.model") + " --data " + photos + " --out " +
                           path("x.codes") + " --quiet"),
                     "not trained on images");
}

}  // namespace

namespace {

// Collections and snapshots offline, and a filtered search of a collection.
TEST_F(CliTest, CollectionsSnapshotsAndFilteredSearch) {
  const std::string data = csv("c.csv", 90, 12);
  train_and_index(data, "itq");
  const std::string dd = path("data");
  Outcome r =
      imsat("collections create --data-dir " + dd + " --name rows --model " + path("m.model"));
  ASSERT_EQ(r.code, 0) << r.err;
  r = imsat("collections create --data-dir " + dd + " --name ../x --bits 8");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("letters, digits"), std::string::npos) << r.err;
  r = imsat("index --model " + path("m.model") + " --data " + data + " --db " + dd +
            "/rows/store --quiet");
  ASSERT_EQ(r.code, 0) << r.err;
  r = imsat("collections list --data-dir " + dd + " --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const nlohmann::json list = nlohmann::json::parse(r.out);
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["name"], "rows");
  EXPECT_EQ(list[0]["items"], 90);
  // A filter on the metadata `imsat index` writes (row numbers).
  r = imsat("search --data-dir " + dd + " --collection rows --key 5 -k 20 --json --filter " +
            "'{\"must\": [{\"key\": \"row\", \"range\": {\"lt\": 30}}], \"must_not\": "
            "[{\"key\": \"label\", \"match\": 2}]}'");
  ASSERT_EQ(r.code, 0) << r.err;
  const nlohmann::json hits = nlohmann::json::parse(r.out)["hits"];
  EXPECT_EQ(hits.size(), 20u);  // 30 rows, a third with label 2: exactly 20 pass
  for (const auto& h : hits) {
    EXPECT_LT(h["metadata"]["row"].get<int>(), 30);
    EXPECT_NE(h.value("label", -1), 2);
  }
  r = imsat("search --data-dir " + dd + " --collection rows --key 5 --filter '{\"must\": 1}'");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--filter"), std::string::npos) << r.err;
  // Snapshot, restore as a new collection, drop the first.
  r = imsat("snapshot create --data-dir " + dd + " --collection rows --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string id = nlohmann::json::parse(r.out)["id"];
  r = imsat("snapshot list --data-dir " + dd + " --collection rows --json");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)[0]["id"], id);
  r = imsat("snapshot restore --data-dir " + dd + " --collection rows --snapshot " + id);
  EXPECT_EQ(r.code, 2);  // over itself only with --force
  r = imsat("snapshot restore --data-dir " + dd + " --collection rows --snapshot " + id +
            " --as rows_copy");
  ASSERT_EQ(r.code, 0) << r.err;
  r = imsat("collections drop --data-dir " + dd + " --name rows");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dd + "/rows"));
  r = imsat("collections list --data-dir " + dd + " --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const nlohmann::json after = nlohmann::json::parse(r.out);
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0]["name"], "rows_copy");
  EXPECT_EQ(after[0]["items"], 90);
  EXPECT_FALSE(after[0]["model_fingerprint"].is_null());
}

// `snapshot restore --force` killed between its renames lost the collection or
// its snapshots. Killed before each of its renames in turn (strace injects SIGKILL at the Nth
// rename system call), the next command that opens the data directory finds the collection
// either as it was or restored, with all its snapshots, and nothing left over; then a drop,
// killed the same way, leaves the collection whole or gone.
TEST_F(CliTest, ARestoreOrDropKilledAtAnyRenameLosesNothing) {
  ASSERT_EQ(std::system("strace -qq -o /dev/null true"), 0)
      << "strace must be installed and allowed to trace (tools/setup.sh installs it)";
  const std::string data = csv("k.csv", 60, 12);
  train_and_index(data, "itq");
  const std::string dd = path("data");
  Outcome r =
      imsat("collections create --data-dir " + dd + " --name rows --model " + path("m.model"));
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string store = " --db " + dd + "/rows/store --quiet";
  ASSERT_EQ(imsat("index --model " + path("m.model") + " --data " + data + store).code, 0);
  r = imsat("snapshot create --data-dir " + dd + " --collection rows --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string small = nlohmann::json::parse(r.out)["id"];  // 60 items
  ASSERT_EQ(
      imsat("index --model " + path("m.model") + " --data " + data + store + " --key-prefix x")
          .code,
      0);
  r = imsat("snapshot create --data-dir " + dd + " --collection rows --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string large = nlohmann::json::parse(r.out)["id"];  // 120 items
  auto items_of_rows = [&]() -> int {
    const Outcome list = imsat("collections list --data-dir " + dd + " --json");
    EXPECT_EQ(list.code, 0) << list.err;
    for (const auto& c : nlohmann::json::parse(list.out)) {
      if (c["name"] == "rows") return c["items"].get<int>();
    }
    return -1;
  };
  auto hidden_entries = [&] {
    std::vector<std::string> hidden;
    for (const auto& e : std::filesystem::recursive_directory_iterator(dd)) {
      const std::string name = e.path().filename().string();
      if (name == ".imsat-lock") continue;  // the data directory's lock
      if (name[0] == '.' || name.find(".partial") != std::string::npos) hidden.push_back(name);
    }
    return hidden;
  };
  const std::string restore =
      " snapshot restore --data-dir " + dd + " --collection rows --force --snapshot ";
  int killed = 0;
  for (int n = 1; n < 40; ++n) {
    r = imsat_under_strace(n, restore + small);
    if (r.code == 0) break;  // the restore made fewer than n renames: every point was tried
    ++killed;
    const int items = items_of_rows();  // opens the data directory: finishes or removes
    EXPECT_TRUE(items == 60 || items == 120) << "killed at rename " << n << ": " << items;
    EXPECT_EQ(hidden_entries(), std::vector<std::string>()) << "killed at rename " << n;
    r = imsat("snapshot list --data-dir " + dd + " --collection rows --json");
    ASSERT_EQ(r.code, 0) << r.err;
    const nlohmann::json snaps = nlohmann::json::parse(r.out);
    ASSERT_EQ(snaps.size(), 2u) << "killed at rename " << n << ": " << r.out;
    EXPECT_EQ(snaps[0]["id"], small);
    EXPECT_EQ(snaps[1]["id"], large);
    // Back to 120 items for the next crash point.
    r = imsat(restore + large);
    ASSERT_EQ(r.code, 0) << "after rename " << n << ": " << r.err;
    ASSERT_EQ(items_of_rows(), 120);
  }
  EXPECT_GE(killed, 4);  // copy checks, intent record, the moves of the snapshots and folders
  EXPECT_EQ(items_of_rows(), 60);
  for (int n = 1; n < 10; ++n) {
    r = imsat_under_strace(n, " collections drop --data-dir " + dd + " --name rows");
    const int items = items_of_rows();
    EXPECT_TRUE(items == 60 || items == -1) << "killed at rename " << n << ": " << items;
    EXPECT_EQ(hidden_entries(), std::vector<std::string>()) << "killed at rename " << n;
    if (r.code == 0 || items == -1) break;
  }
  EXPECT_EQ(items_of_rows(), -1);
  EXPECT_FALSE(std::filesystem::exists(dd + "/rows"));
}

}  // namespace

namespace {

// Sharded encoding and ingest: every row once, under its global row number; a shard ingested
// again is skipped; a shard of another model is refused before anything is written.
TEST_F(CliTest, ShardsEncodeSeparatelyAndIngestOnce) {
  const std::string data = csv("s.csv", 120, 12);
  Outcome r =
      imsat("train --data " + data + " --method itq --bits 8 --quiet --out " + path("m.model"));
  ASSERT_EQ(r.code, 0) << r.err;
  std::string files;
  for (int i = 0; i < 3; ++i) {
    const std::string out = path("s" + std::to_string(i) + ".codes");
    r = imsat("encode --model " + path("m.model") + " --data " + data + " --shard " +
              std::to_string(i) + "/3 --quiet --out " + out);
    ASSERT_EQ(r.code, 0) << r.err;
    files += " " + out;
  }
  r = imsat("encode --model " + path("m.model") + " --data " + data + " --shard 3/3 --out x");
  EXPECT_EQ(r.code, 2);
  r = imsat("ingest --db " + path("db") + files);
  ASSERT_EQ(r.code, 0) << r.err;
  r = imsat("ingest --db " + path("db") + files);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("3 skipped"), std::string::npos) << r.err;
  r = imsat("inspect --db " + path("db") + " --json");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["items"], 120);
  for (const char* key : {"0", "39", "40", "119"}) {
    // The item stored under key K is row K of the whole dataset.
    r = imsat(std::string("search --db ") + path("db") + " --key " + key +
              " -k 5 --json --filter '{\"must\": [{\"key\": \"row\", \"match\": " + key + "}]}'");
    ASSERT_EQ(r.code, 0) << key << ": " << r.err;
    const nlohmann::json hits = nlohmann::json::parse(r.out)["hits"];
    ASSERT_EQ(hits.size(), 1u) << r.out;
    EXPECT_EQ(hits[0]["key"], key);
    EXPECT_EQ(hits[0]["distance"], 0);
  }
  // A shard encoded by another model is refused, and nothing is written.
  r = imsat("train --data " + data + " --method lsh --bits 8 --seed 5 --quiet --out " +
            path("other.model"));
  ASSERT_EQ(r.code, 0) << r.err;
  r = imsat("encode --model " + path("other.model") + " --data " + data +
            " --shard 0/2 --quiet --out " + path("o.codes"));
  ASSERT_EQ(r.code, 0) << r.err;
  r = imsat("ingest --db " + path("db2") + files + " " + path("o.codes"));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("was encoded by model"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(path("db2")));
}

// Ingest replaced the items of keys the store held (another dataset's rows
// under the same row keys) without a word. It refuses as `index` does, unless --overwrite.
TEST_F(CliTest, IngestRefusesKeysTheStoreHoldsUnlessOverwrite) {
  const std::string first = csv("a.csv", 60, 12);
  Outcome r =
      imsat("train --data " + first + " --method itq --bits 8 --quiet --out " + path("m.model"));
  ASSERT_EQ(r.code, 0) << r.err;
  r = imsat("encode --model " + path("m.model") + " --data " + first + " --shard 0/1 --quiet " +
            "--out " + path("a.codes"));
  ASSERT_EQ(r.code, 0) << r.err;
  r = imsat("ingest --db " + path("db") + " " + path("a.codes"));
  ASSERT_EQ(r.code, 0) << r.err;
  r = imsat("search --db " + path("db") + " --key 0 -k 1 --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string before = nlohmann::json::parse(r.out)["hits"][0].dump();
  // Another dataset, the same model, the same row keys 0-39.
  std::ofstream(path("b.csv")) << [] {
    std::string text;
    for (int j = 0; j < 12; ++j) text += "f" + std::to_string(j) + ",";
    text += "label\n";
    for (int i = 0; i < 40; ++i) {
      for (int j = 0; j < 12; ++j) text += std::to_string((i * 7 + j * 13) % 23 - 11) + ",";
      text += "1\n";
    }
    return text;
  }();
  r = imsat("encode --model " + path("m.model") + " --data " + path("b.csv") +
            " --shard 0/1 --quiet --out " + path("b.codes"));
  ASSERT_EQ(r.code, 0) << r.err;
  r = imsat("ingest --db " + path("db") + " " + path("b.codes"));
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_NE(r.err.find("already holds 40 of the keys"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("'0', '1', '2'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--overwrite"), std::string::npos) << r.err;
  r = imsat("search --db " + path("db") + " --key 0 -k 1 --json");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["hits"][0].dump(), before);
  r = imsat("ingest --db " + path("db") + " --overwrite " + path("b.codes"));
  ASSERT_EQ(r.code, 0) << r.err;
  r = imsat("inspect --db " + path("db") + " --json");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["items"], 60);
}

}  // namespace

// A cosine job through the command line: train --metric records it (PCA-ITQ by default), index
// keeps unit vectors and records it in the store, and search re-ranks by 1 - cosine with a
// shortlist, so a query scaled by any factor finds its own item first at score 0.
TEST_F(CliTest, ACosineJobTrainsIndexesAndSearches) {
  const std::string data = csv("items.csv", 300, 10);
  Outcome train =
      imsat("train --data " + data + " --metric cosine --quiet --out " + path("m.model"));
  ASSERT_EQ(train.code, 0) << train.err;
  EXPECT_NE(train.err.find("itq (8 bits, metric cosine)"), std::string::npos) << train.err;
  ASSERT_EQ(imsat("index --model " + path("m.model") + " --data " + data + " --db " + path("db") +
                  " --with-vectors --quiet")
                .code,
            0);
  // The first rows, scaled by 4: the same directions.
  std::ifstream in(data);
  std::ofstream scaled(path("q.csv"));
  std::string line;
  std::getline(in, line);
  scaled << line << "\n";
  for (int r = 0; r < 3 && std::getline(in, line); ++r) {
    std::istringstream cells(line);
    std::string cell;
    std::vector<std::string> row;
    while (std::getline(cells, cell, ',')) row.push_back(cell);
    for (size_t j = 0; j + 1 < row.size(); ++j) scaled << 4 * std::stof(row[j]) << ",";
    scaled << row.back() << "\n";
  }
  scaled.close();
  // The unit vectors cached as float16 are within half precision's rounding of themselves.
  for (const auto& [precision, tolerance] : {std::pair<std::string, double>{"float32", 1e-6},
                                             std::pair<std::string, double>{"float16", 1e-4}}) {
    Outcome s = imsat("search --db " + path("db") + " --query-file " + path("q.csv") +
                      " -k 3 --rerank exact --candidates 100 --shortlist 20 --cache-vectors "
                      "--vector-precision " +
                      precision + " --json");
    ASSERT_EQ(s.code, 0) << s.err;
    std::istringstream lines(s.out);
    int row = 0;
    for (std::string l; std::getline(lines, l); ++row) {
      const nlohmann::json j = nlohmann::json::parse(l);
      EXPECT_EQ(j["hits"][0]["key"], std::to_string(row)) << precision;
      EXPECT_NEAR(j["hits"][0]["score"].get<double>(), 0.0, tolerance) << precision;
      EXPECT_EQ(j["explain"]["candidates_reranked"], 20);
    }
    EXPECT_EQ(row, 3);
  }
  // The cache's precision means nothing without the cache: a usage error, not ignored.
  Outcome alone = imsat("search --db " + path("db") + " --query-file " + path("q.csv") +
                        " -k 3 --rerank exact --vector-precision float16");
  EXPECT_EQ(alone.code, 2);
  EXPECT_NE(alone.err.find("--cache-vectors"), std::string::npos) << alone.err;
  Outcome inspect = imsat("inspect --db " + path("db") + " --json");
  ASSERT_EQ(inspect.code, 0) << inspect.err;
  EXPECT_EQ(nlohmann::json::parse(inspect.out)["metric"], "cosine");
}
