// `imsat search`: kNN or radius search of a store by a stored key, a hex code, an image or every
// item of a dataset; a table, or with --json one JSON document per query (JSON lines).
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "cli.h"
#include "data_options.h"
#include "query/codes_file.h"
#include "query/collections.h"
#include "query/engine.h"
#include "query/json_format.h"
#include "query/store_admin.h"

namespace imsat::cli {
namespace {

struct SearchArgs {
  std::string db, model, key, code, query_file, image, labels, rerank = "none", filter;
  std::string data_dir, collection, vector_precision = "float32";
  size_t k = 10, candidates = 0, shortlist = 0, limit = 10;
  int radius = -1, label = 0;
  bool json = false, scan = false, invert = false, cache_vectors = false;
};

void print_table(const std::string& query, const query::SearchResponse& res, bool reranked) {
  std::printf("query: %s  code %s  (%llu buckets probed, %llu candidates verified)\n",
              query.c_str(), res.query_code.c_str(),
              static_cast<unsigned long long>(res.stats.buckets_probed),
              static_cast<unsigned long long>(res.stats.candidates_verified));
  // The key column is as wide as the longest key (paths of image files are long), at least 20.
  int width = 20;
  for (const query::SearchHit& h : res.hits) {
    width = std::max(width, static_cast<int>(std::min<size_t>(h.key.size(), 200)));
  }
  std::printf("%5s  %-*s %8s %10s %6s  %s\n", "rank", width, "key", "hamming",
              reranked ? "score" : "", "label", "metadata");
  for (size_t i = 0; i < res.hits.size(); ++i) {
    const query::SearchHit& h = res.hits[i];
    char score[32] = "";
    if (reranked) std::snprintf(score, sizeof(score), "%.4f", h.score);
    char label[16] = "-";
    if (h.label != query::kNoLabel) std::snprintf(label, sizeof(label), "%d", h.label);
    std::printf("%5zu  %-*s %8u %10s %6s  %s\n", i + 1, width, h.key.c_str(), h.distance, score,
                label, h.metadata.c_str());
  }
  if (res.hits.empty()) std::printf("  (no items)\n");
}

// The command itself, once its flags are parsed.
void run_search(const std::shared_ptr<SearchArgs>& a, CLI::App* cmd) {
  if (a->key.empty() && a->code.empty() && a->query_file.empty() && a->image.empty()) {
    throw UsageError("give a query: --key, --code, --query-file or --image");
  }
  if (a->db.empty() && a->data_dir.empty()) throw UsageError("give --db or --data-dir");
  const bool encodes = !a->query_file.empty() || !a->image.empty();
  if (!a->data_dir.empty()) {
    if (a->collection.empty()) throw UsageError("--data-dir needs --collection");
    const std::string folder = take(query::collection_folder(a->data_dir, a->collection));
    a->db = folder + "/store";
    if (a->model.empty() && std::filesystem::exists(folder + "/model")) {
      a->model = folder + "/model";
    }
  }
  query::Filter filter;
  if (!a->filter.empty()) {
    Result<query::Filter> f = query::Filter::from_text(a->filter);
    if (!f.is_ok()) throw UsageError("--filter: " + f.status().message());
    filter = std::move(f).value();
  }
  // Without --model the engine takes the model the store was indexed with, when it is there.
  std::unique_ptr<query::QueryEngine> engine =
      take(query::QueryEngine::open(a->db, a->model, /*read_only=*/true));
  if (encodes && engine->model() == nullptr) {
    const Result<std::string> recorded = query::recorded_model(a->db);  // why there is none
    throw UsageError(std::string(a->image.empty() ? "--query-file" : "--image") +
                     " needs a model to encode the query: " +
                     (recorded.is_ok() ? "pass --model" : recorded.status().message()));
  }
  query::SearchRequest r;
  r.k = a->k;
  r.radius = cmd->count("--radius") > 0 ? a->radius : -1;
  r.rerank = take(query::parse_rerank(a->rerank));
  r.candidates = a->candidates;
  r.shortlist = a->shortlist;
  r.filter = cmd->count("--label") > 0 ? take(filter.with_label(a->label)) : filter;
  r.use_multi_index = !a->scan;
  const bool reranked = r.rerank != query::Rerank::kNone;
  auto answer = [&](const std::string& query, const query::SearchResponse& res) {
    if (!a->json) {
      print_table(query, res, reranked);
      return;
    }
    nlohmann::json j = query::search_json(res, r, /*explain=*/true);
    j["query"] = query;
    print_json_line(query::dump_json(j));
  };
  if (!a->key.empty()) {
    answer("key " + a->key, take(engine->search_key(a->key, r)));
  } else if (!a->code.empty()) {
    const std::vector<uint8_t> c = take(query::parse_hex_code(a->code, engine->bits()));
    answer("code " + a->code, take(engine->search_code(c, r)));
  } else if (!a->image.empty()) {
    std::error_code ec;
    if (std::filesystem::is_directory(a->image, ec)) {
      throw std::runtime_error(a->image + ": is a directory, not an image file");
    }
    std::ifstream in(a->image, std::ios::binary);
    if (!in) throw std::runtime_error(a->image + ": cannot read: " + std::strerror(errno));
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    answer("image " + a->image, take(engine->search_image(bytes, r, a->invert)));
  } else {
    DataOptions source;
    source.data = a->query_file;
    source.labels = a->labels;
    const learn::Dataset q = load_data(source, engine->model(), /*quiet=*/true);
    const size_t n = std::min(q.rows, a->limit);
    if (a->cache_vectors) {
      check(engine->cache_vectors(take(query::parse_vector_precision(a->vector_precision))));
    }
    for (size_t i = 0; i < n; ++i) {
      answer(q.keys.empty() ? "row " + std::to_string(i) : "file " + q.keys[i],
             take(engine->search_vector(q.row(i), q.cols, r)));
    }
  }
}

}  // namespace

void add_search(CLI::App& app) {
  auto a = std::make_shared<SearchArgs>();
  CLI::App* cmd = app.add_subcommand("search", "Search a code store by key, code or query file");
  auto* db = cmd->add_option("--db", a->db, "Code store folder");
  auto* data_dir = cmd->add_option("--data-dir", a->data_dir,
                                   "Data directory (with --collection, instead of --db)");
  db->excludes(data_dir);
  cmd->add_option("--collection", a->collection, "Collection of --data-dir")->needs(data_dir);
  cmd->add_option("--model", a->model,
                  "Hash model that encodes --image and --query-file (default: the model the store "
                  "was indexed with, or the collection's own)");
  cmd->add_option("--filter", a->filter,
                  "Metadata filter (JSON, as in the HTTP API): "
                  "'{\"must\": [{\"key\": \"color\", \"match\": \"red\"}]}'");
  auto* key = cmd->add_option("--key", a->key, "Query by a stored item's key");
  auto* code = cmd->add_option("--code", a->code, "Query by a hex code");
  auto* file = cmd->add_option("--query-file", a->query_file, "Query by every item of a dataset");
  auto* image = cmd->add_option("--image", a->image,
                                "Query by a PNG or JPEG image (needs a model trained on images)");
  cmd->add_flag("--invert", a->invert, "Invert the image (dark-on-light pictures)");
  key->excludes(code)->excludes(file)->excludes(image);
  code->excludes(file)->excludes(image);
  file->excludes(image);
  cmd->add_option("--labels", a->labels, "IDX labels for an IDX --query-file");
  auto* cache = cmd->add_flag(
      "--cache-vectors", a->cache_vectors,
      "With --query-file: load every stored vector into memory first, so exact "
      "re-ranking of many queries reads memory (as imsat serve does) instead of RocksDB");
  cmd->add_option("--vector-precision", a->vector_precision,
                  "With --cache-vectors: hold them as float32, or float16 (half the memory and "
                  "faster re-ranking; values rounded to 11 significant bits)")
      ->check(CLI::IsMember({"float32", "float16"}))
      ->capture_default_str()
      ->needs(cache);
  cmd->add_option("--limit", a->limit, "At most this many queries from --query-file")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  auto* k = cmd->add_option("-k", a->k, "Nearest neighbours")
                ->check(CLI::Range(size_t{1}, query::kMaxK))
                ->capture_default_str();
  auto* radius = cmd->add_option("--radius", a->radius, "All items within this Hamming radius")
                     ->check(CLI::Range(0, kMaxCodeBits));
  k->excludes(radius);
  cmd->add_option("--rerank", a->rerank,
                  "none, exact (the store's distance to stored vectors: Euclidean, or 1 - cosine "
                  "for a cosine store) or asymmetric (each candidate code's negative "
                  "log-likelihood under the query's bit probabilities)")
      ->check(CLI::IsMember({"none", "exact", "asymmetric"}))
      ->capture_default_str();
  cmd->add_option("--candidates", a->candidates,
                  "Hamming candidates to re-rank (0 = max(10 k, 100))");
  cmd->add_option("--shortlist", a->shortlist,
                  "With --rerank exact and a vector query: compare exactly only the best this many "
                  "candidates by asymmetric score (0 = every candidate)");
  cmd->add_option("--label", a->label, "Only items with this label")->check(CLI::NonNegativeNumber);
  cmd->add_flag("--scan", a->scan, "Linear scan instead of multi-index probing");
  cmd->add_flag("--json", a->json, "JSON on stdout: one line per query");
  cmd->callback([a, cmd] { run_search(a, cmd); });
}

}  // namespace imsat::cli
