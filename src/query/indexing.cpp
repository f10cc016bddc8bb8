// Bulk indexing of a dataset or codes file into a store (`imsat index`).
#include "query/indexing.h"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/checksum.h"
#include "query/codes_file.h"

namespace imsat::query {
namespace {

namespace fs = std::filesystem;

}  // namespace

// Encodes in chunks so progress moves and the activations' memory stays bounded.
Result<std::vector<uint8_t>> encode_dataset(
    const learn::Model& model, const learn::Dataset& data,
    const std::function<void(size_t done, size_t total)>& progress) {
  if (data.cols != model.input_dim()) {
    return Status::invalid_argument(data.source + ": items have " + std::to_string(data.cols) +
                                    " values, the model expects " +
                                    std::to_string(model.input_dim()));
  }
  learn::set_num_threads(0);  // the tuned split; LibTorch's own default oversubscribes the cores
  const size_t chunk = 1024;
  const size_t bytes = static_cast<size_t>(model.code_bytes());
  std::vector<uint8_t> codes(data.rows * bytes);
  for (size_t start = 0; start < data.rows; start += chunk) {
    const size_t n = std::min(chunk, data.rows - start);
    IMSAT_ASSIGN_OR_RETURN(std::vector<uint8_t> part, model.encode(data.row(start), n, data.cols));
    std::copy(part.begin(), part.end(), codes.begin() + static_cast<std::ptrdiff_t>(start * bytes));
    if (progress) progress(start + n, data.rows);
  }
  return codes;
}

namespace {

// The resumable job's name: the model, the source file (path, size, modification time) and every
// option that changes what is written, so a changed source or setting starts a new job.
std::string job_name(const IndexRequest& r, const std::string& fingerprint,
                     const learn::Dataset& data) {
  const std::string& source = r.images.manifest.empty() ? r.data : r.images.manifest;
  std::string identity = fs::absolute(source).string();
  struct stat st {};
  if (::stat(source.c_str(), &st) == 0) {
    identity += "|" + std::to_string(st.st_size) + "|" + std::to_string(st.st_mtim.tv_sec) + "." +
                std::to_string(st.st_mtim.tv_nsec);
  }
  identity += "|labels=" + (r.labels.empty() ? std::string() : fs::absolute(r.labels).string());
  identity += "|prefix=" + r.items.key_prefix;
  identity += "|vectors=" + std::string(r.items.with_vectors ? "1" : "0");
  if (!r.images.manifest.empty() || io::is_image_folder(r.data)) {
    identity += "|images=" + std::string(r.images.keep_duplicates ? "all" : "unique") + "|" +
                std::to_string(r.images.max_pixels) + "|" + std::to_string(r.images.thumbnail_side);
    // A folder's own modification time misses files changed in its subfolders: the job is also
    // named after what was read (every key and value), so any change starts a new job.
    uint64_t h = fnv1a64(identity);
    for (const std::string& key : data.keys) h = fnv1a64_bytes(key.data(), key.size() + 1, h);
    h = fnv1a64_bytes(data.values.data(), data.values.size() * sizeof(float), h);
    identity += "|content=" + std::to_string(h);
  }
  char hash[17];
  std::snprintf(hash, sizeof(hash), "%016llx", static_cast<unsigned long long>(fnv1a64(identity)));
  return "index:" + fingerprint + ":" + fs::absolute(source).string() + ":" + hash;
}

}  // namespace

// A shard is named after what it holds, not where the file lies: moving or copying shard files to
// another machine does not start the job again.
std::string shard_job_name(const CodesFile& f, const std::string& key_prefix) {
  uint64_t h = fnv1a64_bytes(f.codes.data(), f.codes.size());
  h = fnv1a64_bytes(f.labels.data(), f.labels.size() * sizeof(int32_t), h);
  char hash[17];
  std::snprintf(hash, sizeof(hash), "%016llx", static_cast<unsigned long long>(h));
  return "shard:" + f.fingerprint + ":" + f.shard + ":" + std::to_string(f.first_row) + ":" +
         std::to_string(f.rows) + ":" + key_prefix + ":" + hash;
}

void make_item(const std::vector<uint8_t>& codes, int bits, const std::vector<int32_t>& labels,
               const learn::Dataset* data, size_t train_rows, const ItemOptions& options,
               size_t row, index::Item* out) {
  const size_t bytes = static_cast<size_t>(bits) / 8;
  out->key = options.key_prefix + (data != nullptr && !data->keys.empty()
                                       ? data->keys[row]
                                       : std::to_string(options.first_row + row));
  out->code.assign(codes.begin() + static_cast<std::ptrdiff_t>(row * bytes),
                   codes.begin() + static_cast<std::ptrdiff_t>((row + 1) * bytes));
  out->tag = labels.empty() ? index::kNoTag : labels[row];
  if (data != nullptr && !data->metadata.empty()) {
    nlohmann::json meta = nlohmann::json::parse(data->metadata[row]);
    meta["source"] = options.source;
    meta["row"] = options.first_row + row;
    if (!labels.empty()) meta["label"] = labels[row];
    if (train_rows > 0) meta["split"] = row < train_rows ? "train" : "test";
    out->metadata = meta.dump();
  } else {
    // The common case, written directly (no JSON document per item): the same text nlohmann
    // would produce, keys in its sorted order.
    std::string& m = out->metadata;
    m.clear();
    if (!labels.empty()) {
      m += "{\"label\":";
      m += std::to_string(labels[row]);
      m += ",\"row\":";
    } else {
      m += "{\"row\":";
    }
    m += std::to_string(options.first_row + row);
    m += ",\"source\":";
    m += options.source_json.empty() ? nlohmann::json(options.source).dump() : options.source_json;
    if (train_rows > 0) m += row < train_rows ? ",\"split\":\"train\"" : ",\"split\":\"test\"";
    m += '}';
  }
  out->thumbnail.clear();
  if (data != nullptr && !data->thumbnails.empty()) out->thumbnail = data->thumbnails[row];
  out->vector.clear();
  if (options.with_vectors && data != nullptr) {
    out->vector.assign(data->row(row), data->row(row) + data->cols);
  }
}

std::vector<index::Item> dataset_items(const learn::Dataset& data,
                                       const std::vector<uint8_t>& codes, int bits,
                                       const ItemOptions& options) {
  std::vector<index::Item> items(data.rows);
  for (size_t i = 0; i < data.rows; ++i) {
    make_item(codes, bits, data.labels, &data, data.train_rows, options, i, &items[i]);
  }
  return items;
}

Result<IndexReport> index_dataset(const IndexRequest& request) {
  const auto t0 = std::chrono::steady_clock::now();
  IndexReport report;
  CodesFile f;
  learn::Dataset data;
  std::unique_ptr<learn::Model> model;
  const bool from_codes = is_codes_file(request.data);
  if (from_codes) {
    if (!request.model.empty()) {
      return Status::invalid_argument(request.data +
                                      " is a codes file; a model is only for raw data");
    }
    if (request.items.with_vectors) {
      return Status::invalid_argument("storing vectors needs raw data and a model");
    }
    IMSAT_ASSIGN_OR_RETURN(f, read_codes_file(request.data));
  } else {
    if (request.model.empty()) {
      return Status::invalid_argument("a model is needed to index raw data (" + request.data + ")");
    }
    IMSAT_ASSIGN_OR_RETURN(learn::Model m, learn::Model::load(request.model));
    if (m.is_clustering()) {
      return Status::invalid_argument(request.model +
                                      ": a clustering model; a hash model is needed");
    }
    model = std::make_unique<learn::Model>(std::move(m));
    if (!request.images.manifest.empty() || io::is_image_folder(request.data)) {
      io::ImageImport images = request.images;
      Result<io::ImagePipeline> pipeline = model->image_input();
      if (!pipeline.is_ok()) {
        return Status::invalid_argument(request.model + ": " + pipeline.status().message());
      }
      images.pipeline = *pipeline;
      images.on_progress = [&](size_t done, size_t total) {
        if (request.progress) request.progress("read", done, total);
      };
      IMSAT_ASSIGN_OR_RETURN(
          data, learn::load_dataset(request.data, request.labels, images, request.import_report));
    } else {
      IMSAT_ASSIGN_OR_RETURN(data, learn::load_dataset(request.data, request.labels));
    }
    if (data.cols != model->input_dim()) {  // checked before the store is created or touched
      return Status::invalid_argument(data.source + ": items have " + std::to_string(data.cols) +
                                      " values, the model expects " +
                                      std::to_string(model->input_dim()));
    }
    f.bits = model->bits();
    f.rows = data.rows;
    f.fingerprint = model->fingerprint();
    f.source = data.source;
    f.labels = data.labels;
  }
  report.read_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  report.rows = f.rows;

  index::StoreOptions o;
  o.bits = f.bits;
  o.tables = request.tables;
  o.expected_items = std::max<size_t>(f.rows, 1000);
  o.model_fingerprint = f.fingerprint;
  IMSAT_ASSIGN_OR_RETURN(std::unique_ptr<index::CodeStore> store,
                         index::CodeStore::open(request.db, o));
  report.job = !request.job.empty() ? request.job : job_name(request, f.fingerprint, data);
  if (request.job.empty() && from_codes && !f.shard.empty()) {
    report.job = shard_job_name(f, request.items.key_prefix);
  }
  IMSAT_ASSIGN_OR_RETURN(report.done_before, store->bulk_progress(report.job));
  if (report.done_before >= f.rows) {
    report.already_done = true;
    report.store_items = store->info().items;
    return report;
  }
  ItemOptions items = request.items;
  items.source = fs::path(f.source).filename().string();
  items.source_json = nlohmann::json(items.source).dump();
  items.first_row = from_codes ? f.first_row : 0;
  if (report.done_before == 0 && !request.overwrite && store->info().items > 0) {
    // A new job over a store that holds items: refuse to replace keys written by another source
    // (or with other settings) unless asked to.
    const size_t chunk = 50000;
    for (size_t start = 0; start < f.rows; start += chunk) {
      std::vector<std::string> keys;
      for (size_t i = start; i < std::min(f.rows, start + chunk); ++i) {
        keys.push_back(items.key_prefix +
                       (data.keys.empty() ? std::to_string(items.first_row + i) : data.keys[i]));
      }
      std::vector<std::string> first;
      IMSAT_ASSIGN_OR_RETURN(const size_t held, store->count_existing(keys, &first));
      if (held > 0) {
        return Status::invalid_argument(
            request.db + " already holds key '" + first.front() +
            "' (and perhaps more) from another source or other settings; pass --overwrite to "
            "replace them, or --key-prefix to index beside them");
      }
    }
  }
  if (model != nullptr) {
    IMSAT_ASSIGN_OR_RETURN(f.codes, encode_dataset(*model, data, [&](size_t done, size_t total) {
                             if (request.progress) request.progress("encode", done, total);
                           }));
  }
  const size_t train_rows = from_codes ? 0 : data.train_rows;
  auto next = [&](size_t i, index::Item* item) {
    if (i >= f.rows) return false;
    make_item(f.codes, f.bits, f.labels, from_codes ? nullptr : &data, train_rows, items, i, item);
    return true;
  };
  // Rows, relative paths and manifest keys (checked) are distinct: a job that starts on an empty
  // store needs no per-key existence check.
  IMSAT_RETURN_IF_ERROR(store->bulk_load(
      report.job, next, request.batch,
      [&](size_t done) {
        if (request.progress) request.progress("index", done, f.rows);
      },
      /*new_keys=*/true, /*build_index=*/false));  // closed next: every open builds it
  report.indexed = f.rows - report.done_before;
  report.store_items = store->info().items;
  return report;
}

namespace {

// InvalidArgument naming the first keys of rows [from, rows) of a shard that `store` already
// holds, and how many it holds: an ingest replaces keys only when asked to (--overwrite).
Status refuse_held_keys(const index::CodeStore& store, const std::string& db,
                        const std::string& path, const CodesFile& f, const ItemOptions& items,
                        size_t from) {
  constexpr size_t kChunk = 50000;
  constexpr size_t kNamed = 3;
  size_t held = 0;
  std::vector<std::string> named;
  for (size_t start = from; start < f.rows; start += kChunk) {
    std::vector<std::string> keys;
    for (size_t i = start; i < std::min(f.rows, start + kChunk); ++i) {
      keys.push_back(items.key_prefix + std::to_string(items.first_row + i));
    }
    std::vector<std::string> found;  // the chunk's first held keys, in row order
    IMSAT_ASSIGN_OR_RETURN(const size_t n, store.count_existing(keys, &found, kNamed));
    for (size_t i = 0; i < found.size() && named.size() < kNamed; ++i) {
      named.push_back("'" + found[i] + "'");
    }
    held += n;
  }
  if (held == 0) return Status::ok();
  std::string list;
  for (size_t i = 0; i < named.size(); ++i) list += (i > 0 ? ", " : "") + named[i];
  return Status::invalid_argument(
      db + " already holds " + std::to_string(held) + " of the keys of " + path + " (" + list +
      (held > named.size() ? ", ..." : "") +
      ") from another source or other settings; nothing was written. Pass --overwrite to replace "
      "them, or --key-prefix to ingest beside them");
}

}  // namespace

Result<IngestReport> ingest_codes_files(const IngestRequest& request) {
  if (request.files.empty()) return Status::invalid_argument("no codes files to ingest");
  struct Part {
    std::string path;
    CodesFile header;
  };
  std::vector<Part> parts;
  for (const std::string& path : request.files) {
    IMSAT_ASSIGN_OR_RETURN(CodesFile header, read_codes_header(path));
    parts.push_back({path, std::move(header)});
  }
  const CodesFile& first = parts.front().header;
  std::string store_fingerprint;
  if (fs::exists(request.db)) {
    index::StoreOptions o;
    o.read_only = true;
    o.create_if_missing = false;
    IMSAT_ASSIGN_OR_RETURN(std::unique_ptr<index::CodeStore> store,
                           index::CodeStore::open(request.db, o));
    store_fingerprint = store->info().model_fingerprint;
    if (store->bits() != first.bits) {
      return Status::invalid_argument(request.db + " holds " + std::to_string(store->bits()) +
                                      "-bit codes; " + parts.front().path + " has " +
                                      std::to_string(first.bits) + "; nothing was written");
    }
  }
  for (const Part& p : parts) {
    if (p.header.bits != first.bits) {
      return Status::invalid_argument(p.path + " has " + std::to_string(p.header.bits) +
                                      "-bit codes, " + parts.front().path + " " +
                                      std::to_string(first.bits) + "; nothing was written");
    }
    const std::string& want = store_fingerprint.empty() ? first.fingerprint : store_fingerprint;
    if (p.header.fingerprint != want) {
      return Status::invalid_argument(
          p.path + " was encoded by model " + p.header.fingerprint + ", not by " + want + " (" +
          (store_fingerprint.empty() ? parts.front().path : request.db) + "); nothing was written");
    }
  }
  std::sort(parts.begin(), parts.end(),
            [](const Part& x, const Part& y) { return x.header.first_row < y.header.first_row; });
  for (size_t i = 1; i < parts.size(); ++i) {
    const CodesFile& prev = parts[i - 1].header;
    if (parts[i].header.first_row < prev.first_row + prev.rows) {
      return Status::invalid_argument(
          parts[i].path + " overlaps " + parts[i - 1].path + " (rows " +
          std::to_string(parts[i].header.first_row) + " and " + std::to_string(prev.first_row) +
          "-" + std::to_string(prev.first_row + prev.rows - 1) + "); nothing was written");
    }
  }
  index::StoreOptions o;
  o.bits = first.bits;
  o.expected_items = std::max<size_t>(first.rows * parts.size(), 1000);
  o.model_fingerprint = first.fingerprint;
  IMSAT_ASSIGN_OR_RETURN(std::unique_ptr<index::CodeStore> store,
                         index::CodeStore::open(request.db, o));
  // Each shard is read whole when the step reaches it, one at a time; its codes stay until the
  // step is ingested (the store keeps them in memory anyway).
  IngestReport report;
  std::vector<CodesFile> bodies(parts.size());
  std::vector<ItemOptions> options(parts.size());
  std::vector<index::CodeStore::BulkJob> jobs;
  for (size_t j = 0; j < parts.size(); ++j) {
    IMSAT_ASSIGN_OR_RETURN(bodies[j], read_codes_file(parts[j].path));
    const CodesFile& f = bodies[j];
    const std::string job = shard_job_name(f, request.key_prefix);
    IMSAT_ASSIGN_OR_RETURN(const size_t done, store->bulk_progress(job));
    IngestReport::Shard shard{parts[j].path, f.shard, f.rows, done >= f.rows, done};
    report.shards.push_back(shard);
    if (shard.already_done) {
      bodies[j] = CodesFile();
      continue;
    }
    ItemOptions& items = options[j];
    items.key_prefix = request.key_prefix;
    items.source = fs::path(f.source).filename().string();
    items.source_json = nlohmann::json(items.source).dump();
    items.first_row = f.first_row;
    if (!request.overwrite && store->info().items > 0) {
      IMSAT_RETURN_IF_ERROR(refuse_held_keys(*store, request.db, parts[j].path, f, items, done));
    }
    jobs.push_back({job, [&f, &items](size_t i, index::Item* item) {
                      if (i >= f.rows) return false;
                      make_item(f.codes, f.bits, f.labels, nullptr, 0, items, i, item);
                      return true;
                    }});
  }
  // Shards hold disjoint rows (checked above), so their keys are distinct.
  IMSAT_ASSIGN_OR_RETURN(report.added,
                         store->bulk_load_atomic(jobs, request.batch, request.progress,
                                                 /*new_keys=*/true, /*build_index=*/false));
  report.store_items = store->info().items;
  return report;
}

}  // namespace imsat::query
