// Bulk indexing of a dataset or codes file into a store (`imsat index`).
#include "query/indexing.h"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/checksum.h"
#include "query/codes_file.h"
#include "query/metric.h"

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
    if (options.unit_vectors) scale_to_unit_length(out->vector.data(), out->vector.size());
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

namespace {

constexpr size_t kRowBatch = 50000;   // items per atomic batch of rows and codes
constexpr size_t kImageBatch = 2048;  // of image files (each item carries a thumbnail)
constexpr size_t kDecodeBatch = 512;  // image files decoded at a time, one batch ahead

// The identity of an indexing job's source and of every option that changes what is written.
std::string job_identity(const IndexRequest& r, const std::string& source) {
  std::string identity = fs::absolute(source).string();
  struct stat st {};
  if (::stat(source.c_str(), &st) == 0) {
    identity += "|" + std::to_string(st.st_size) + "|" + std::to_string(st.st_mtim.tv_sec) + "." +
                std::to_string(st.st_mtim.tv_nsec);
  }
  identity += "|labels=" + (r.labels.empty() ? std::string() : fs::absolute(r.labels).string());
  identity += "|prefix=" + r.items.key_prefix;
  identity += "|vectors=" + std::string(r.items.with_vectors ? "1" : "0");
  return identity;
}

std::string job_named(const std::string& fingerprint, const std::string& source,
                      const std::string& identity) {
  char hash[17];
  std::snprintf(hash, sizeof(hash), "%016llx", static_cast<unsigned long long>(fnv1a64(identity)));
  return "index:" + fingerprint + ":" + fs::absolute(source).string() + ":" + hash;
}

// A file's job: the model, the source file (path, size, modification time) and the options, so
// a changed source or setting starts a new job.
std::string file_job_name(const IndexRequest& r, const std::string& fingerprint) {
  return job_named(fingerprint, r.data, job_identity(r, r.data));
}

// An image import's job: also named after every file the scan found (a folder's own modification
// time misses files changed in its subfolders) and the import's settings.
std::string image_job_name(const IndexRequest& r, const std::string& fingerprint,
                           const io::ImageScan& scan) {
  std::string identity = job_identity(r, scan.origin);
  identity += "|images=" + std::string(r.images.keep_duplicates ? "all" : "unique") + "|" +
              std::to_string(r.images.max_pixels) + "|" + std::to_string(r.images.thumbnail_side) +
              "|files=" + std::to_string(scan.fingerprint);
  return job_named(fingerprint, scan.origin, identity);
}

// What index_dataset writes, whatever it read: `rows` source positions with their keys (without
// the prefix; for the check against keys the store holds) and the items, as CodeStore::bulk_load
// takes them.
struct Source {
  int bits = 0;
  std::string fingerprint;
  std::string metric;  // recorded in a new store (metric_of)
  size_t rows = 0;
  std::string job;
  size_t batch = 0;
  std::string model_path;  // recorded in the store for queries that name no model
  std::function<std::string(size_t)> key;
  std::function<bool(size_t, index::Item*)> next;
};

// InvalidArgument naming the first of the keys of positions [from, rows) that `store` already
// holds, and how many it holds: indexing or ingesting replaces the keys of another source (or of
// other settings) only when asked to (--overwrite). `key(i)` is position i's key, prefix included.
Status refuse_held_keys(const index::CodeStore& store, const std::string& db,
                        const std::string& source, size_t from, size_t rows,
                        const std::function<std::string(size_t)>& key, const char* verb) {
  constexpr size_t kChunk = 50000;
  constexpr size_t kNamed = 3;
  size_t held = 0;
  std::vector<std::string> named;
  for (size_t start = from; start < rows; start += kChunk) {
    std::vector<std::string> keys;
    for (size_t i = start; i < std::min(rows, start + kChunk); ++i) keys.push_back(key(i));
    std::vector<std::string> found;  // the chunk's first held keys, in order
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
      db + " already holds " + std::to_string(held) + " of the keys of " + source + " (" + list +
      (held > named.size() ? ", ..." : "") +
      ") from another source or other settings; nothing was written. Pass --overwrite to replace "
      "them, or --key-prefix to " +
      verb + " beside them");
}

// Opens (or creates) the store, skips a finished job, refuses keys of other sources, and bulk
// loads the source from where an earlier run of its job stopped. `start(done_before)` is called
// once the store says where that is, before the first item is asked for.
Status write_source(const IndexRequest& request, Source& source, IndexReport* report,
                    const std::function<Status(size_t)>& start = nullptr) {
  index::StoreOptions o;
  o.bits = source.bits;
  o.tables = request.tables;
  o.expected_items = std::max<size_t>(source.rows, 1000);
  o.model_fingerprint = source.fingerprint;
  o.metric = source.metric;
  IMSAT_ASSIGN_OR_RETURN(std::unique_ptr<index::CodeStore> store,
                         index::CodeStore::open(request.db, o));
  report->job = source.job;
  report->rows = source.rows;
  IMSAT_ASSIGN_OR_RETURN(report->done_before, store->bulk_progress(report->job));
  if (report->done_before >= source.rows) {
    report->already_done = true;
    report->store_items = store->info().items;
    return Status::ok();
  }
  if (report->done_before == 0 && !request.overwrite && store->info().items > 0) {
    IMSAT_RETURN_IF_ERROR(refuse_held_keys(
        *store, request.db, request.data.empty() ? request.images.manifest : request.data, 0,
        source.rows, [&](size_t i) { return request.items.key_prefix + source.key(i); }, "index"));
  }
  if (!source.model_path.empty()) {
    IMSAT_RETURN_IF_ERROR(store->record_model_path(fs::absolute(source.model_path).string()));
  }
  if (start) IMSAT_RETURN_IF_ERROR(start(report->done_before));
  size_t written = 0;
  const auto next = [&](size_t i, index::Item* item) {
    if (!source.next(i, item)) return false;
    written += item->key.empty() ? 0 : 1;
    return true;
  };
  // Rows, relative paths and manifest keys (checked) are distinct: a job that starts on an empty
  // store needs no per-key existence check.
  IMSAT_RETURN_IF_ERROR(store->bulk_load(
      report->job, next, source.batch,
      [&](size_t done) {
        if (request.progress) request.progress("index", done, source.rows);
      },
      /*new_keys=*/true, /*build_index=*/false));  // closed next: every open builds it
  report->store_items = store->info().items;
  report->indexed = written;
  return Status::ok();
}

Result<std::unique_ptr<learn::Model>> hash_model(const IndexRequest& request) {
  if (request.model.empty()) {
    return Status::invalid_argument("a model is needed to index raw data (" + request.data + ")");
  }
  IMSAT_ASSIGN_OR_RETURN(learn::Model m, learn::Model::load(request.model));
  if (m.is_clustering()) {
    return Status::invalid_argument(request.model + ": a clustering model; a hash model is needed");
  }
  return std::make_unique<learn::Model>(std::move(m));
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

Result<IndexReport> index_codes_file(const IndexRequest& request) {
  const auto t0 = std::chrono::steady_clock::now();
  if (!request.model.empty()) {
    return Status::invalid_argument(request.data +
                                    " is a codes file; a model is only for raw data");
  }
  if (request.items.with_vectors) {
    return Status::invalid_argument("storing vectors needs raw data and a model");
  }
  IMSAT_ASSIGN_OR_RETURN(const CodesFile f, read_codes_file(request.data));
  IndexReport report;
  report.read_seconds = seconds_since(t0);
  ItemOptions items = request.items;
  items.source = io::source_name(f.source);
  items.source_json = nlohmann::json(items.source).dump();
  items.first_row = f.first_row;
  Source source;
  source.bits = f.bits;
  source.fingerprint = f.fingerprint;
  source.rows = f.rows;
  source.batch = request.batch > 0 ? request.batch : kRowBatch;
  source.job = !request.job.empty() ? request.job
               : !f.shard.empty()   ? shard_job_name(f, request.items.key_prefix)
                                    : file_job_name(request, f.fingerprint);
  source.key = [&](size_t i) { return std::to_string(f.first_row + i); };
  source.next = [&](size_t i, index::Item* item) {
    if (i >= f.rows) return false;
    make_item(f.codes, f.bits, f.labels, nullptr, 0, items, i, item);
    return true;
  };
  IMSAT_RETURN_IF_ERROR(write_source(request, source, &report));
  return report;
}

// A dataset of rows (IDX, vector files, CSV): read whole, encoded, then written.
Result<IndexReport> index_rows(const IndexRequest& request, const learn::Model& model) {
  const auto t0 = std::chrono::steady_clock::now();
  IMSAT_ASSIGN_OR_RETURN(const learn::Dataset data,
                         learn::load_dataset(request.data, request.labels));
  if (data.cols != model.input_dim()) {  // checked before the store is created or touched
    return Status::invalid_argument(data.source + ": items have " + std::to_string(data.cols) +
                                    " values, the model expects " +
                                    std::to_string(model.input_dim()));
  }
  IndexReport report;
  report.read_seconds = seconds_since(t0);
  ItemOptions items = request.items;
  items.unit_vectors = model.metric() == learn::Metric::kCosine;
  items.source = io::source_name(data.source);
  items.source_json = nlohmann::json(items.source).dump();
  std::vector<uint8_t> codes;
  Source source;
  source.bits = model.bits();
  source.fingerprint = model.fingerprint();
  source.metric = metric_of(model);
  source.rows = data.rows;
  source.batch = request.batch > 0 ? request.batch : kRowBatch;
  source.job = !request.job.empty() ? request.job : file_job_name(request, source.fingerprint);
  source.model_path = request.model;
  source.key = [](size_t i) { return std::to_string(i); };
  source.next = [&](size_t i, index::Item* item) {
    if (i >= data.rows) return false;
    make_item(codes, source.bits, data.labels, &data, data.train_rows, items, i, item);
    return true;
  };
  IMSAT_RETURN_IF_ERROR(write_source(request, source, &report, [&](size_t) -> Status {
    IMSAT_ASSIGN_OR_RETURN(codes, encode_dataset(model, data, [&](size_t done, size_t total) {
                             if (request.progress) request.progress("encode", done, total);
                           }));
    return Status::ok();
  }));
  return report;
}

// The item of image file `i`, decoded as row `row` (of `dim` values) of `batch` with code `code`:
// its key, label, metadata (the scan's, its source and row), thumbnail (moved out of the batch) and
// vector.
void image_item(const io::ImageScan& scan, size_t i, const ItemOptions& items,
                io::ImageBatch* batch, size_t row, size_t dim, const uint8_t* code, size_t bytes,
                index::Item* item) {
  const io::ImageFile& file = scan.files[i];
  nlohmann::json meta = nlohmann::json::object();
  scan.metadata_into(i, &meta);
  meta["source"] = items.source;
  meta["row"] = i;
  if (scan.labelled) meta["label"] = file.label;
  item->key = items.key_prefix + scan.key(i);
  item->code.assign(code, code + bytes);
  item->tag = scan.labelled ? file.label : index::kNoTag;
  item->metadata = meta.dump();
  item->thumbnail = batch->thumbnails.empty() ? std::string() : std::move(batch->thumbnails[row]);
  item->vector.clear();
  if (items.with_vectors) {
    const float* values = batch->values.data() + row * dim;
    item->vector.assign(values, values + dim);
    if (items.unit_vectors) scale_to_unit_length(item->vector.data(), dim);
  }
}

// Image files, streamed: the scan lists them once, then batches are decoded (one batch ahead, on
// every core), encoded and written in turn, so memory holds a few batches whatever the folder's
// size. A file that cannot be used is a position that adds no item.
Result<IndexReport> index_images(const IndexRequest& request, const learn::Model& model) {
  const auto t0 = std::chrono::steady_clock::now();
  io::ImageImport settings = request.images;
  Result<io::ImagePipeline> pipeline = model.image_input();
  if (!pipeline.is_ok()) {
    return Status::invalid_argument(request.model + ": " + pipeline.status().message());
  }
  settings.pipeline = *pipeline;
  settings.on_progress = nullptr;  // progress is the positions written
  IMSAT_ASSIGN_OR_RETURN(const io::ImageScan scan, io::scan_images(request.data, settings));
  if (settings.pipeline.output_dim() != model.input_dim()) {
    return Status::invalid_argument(request.model + ": its image pipeline makes " +
                                    std::to_string(settings.pipeline.output_dim()) +
                                    " values, the model expects " +
                                    std::to_string(model.input_dim()));
  }
  IndexReport report;
  report.read_seconds = seconds_since(t0);
  ItemOptions items = request.items;
  items.unit_vectors = model.metric() == learn::Metric::kCosine;
  items.source = io::source_name(scan.origin);
  const size_t bytes = static_cast<size_t>(model.bits()) / 8;
  const size_t dim = settings.pipeline.output_dim();
  std::unique_ptr<io::ImageReader> reader;
  io::ImageBatch batch;           // the batch being written
  std::vector<uint8_t> codes;     // its rows' codes
  size_t cursor = 0;              // its next row
  Status failure = Status::ok();  // a decoding or encoding error, which ends the source
  io::ImportReport imported;
  Source source;
  source.bits = model.bits();
  source.fingerprint = model.fingerprint();
  source.metric = metric_of(model);
  source.rows = scan.files.size();
  source.batch = request.batch > 0 ? request.batch : kImageBatch;
  source.job =
      !request.job.empty() ? request.job : image_job_name(request, source.fingerprint, scan);
  source.model_path = request.model;
  source.key = [&](size_t i) { return scan.key(i); };
  source.next = [&](size_t i, index::Item* item) {
    while (i >= batch.first + batch.files) {
      if (!failure.is_ok()) return false;
      Result<io::ImageBatch> b = reader->next();
      if (!b.is_ok()) {
        failure = b.status();
        return false;
      }
      if (b->files == 0) return false;
      batch = std::move(b).value();
      imported.merge(batch.report);
      Result<std::vector<uint8_t>> c = model.encode(batch.values.data(), batch.rows(), dim);
      if (!c.is_ok()) {
        failure = c.status();
        return false;
      }
      codes = std::move(c).value();
      cursor = 0;
    }
    if (cursor >= batch.rows() || batch.positions[cursor] != i) {
      item->key.clear();  // a skipped file
      return true;
    }
    image_item(scan, i, items, &batch, cursor, dim, codes.data() + cursor * bytes, bytes, item);
    ++cursor;
    return true;
  };
  learn::set_num_threads(0);
  const Status written = write_source(request, source, &report, [&](size_t done) -> Status {
    batch.first = done;
    reader = std::make_unique<io::ImageReader>(scan, settings, done, kDecodeBatch);
    return Status::ok();
  });
  reader.reset();
  if (request.import_report != nullptr) *request.import_report = imported;
  IMSAT_RETURN_IF_ERROR(written);
  IMSAT_RETURN_IF_ERROR(failure);
  if (report.done_before == 0 && !report.already_done && imported.read == 0) {
    return Status::invalid_argument(scan.origin + ": holds no readable images (" +
                                    imported.summary() + ")");
  }
  return report;
}

}  // namespace

Result<IndexReport> index_dataset(const IndexRequest& request) {
  if (is_codes_file(request.data)) return index_codes_file(request);
  IMSAT_ASSIGN_OR_RETURN(const std::unique_ptr<learn::Model> model, hash_model(request));
  if (!request.images.manifest.empty() || io::is_image_folder(request.data)) {
    return index_images(request, *model);
  }
  return index_rows(request, *model);
}

namespace {

struct Shard {
  std::string path;
  CodesFile header;
};

// The shards' headers, sorted by first row, checked to hold codes of one length and one model
// (the store's, when it exists) and disjoint rows. InvalidArgument naming the file otherwise.
Result<std::vector<Shard>> read_shard_headers(const IngestRequest& request) {
  std::vector<Shard> parts;
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
  for (const Shard& p : parts) {
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
            [](const Shard& x, const Shard& y) { return x.header.first_row < y.header.first_row; });
  for (size_t i = 1; i < parts.size(); ++i) {
    const CodesFile& prev = parts[i - 1].header;
    if (parts[i].header.first_row < prev.first_row + prev.rows) {
      return Status::invalid_argument(
          parts[i].path + " overlaps " + parts[i - 1].path + " (rows " +
          std::to_string(parts[i].header.first_row) + " and " + std::to_string(prev.first_row) +
          "-" + std::to_string(prev.first_row + prev.rows - 1) + "); nothing was written");
    }
  }
  return parts;
}

}  // namespace

Result<IngestReport> ingest_codes_files(const IngestRequest& request) {
  if (request.files.empty()) return Status::invalid_argument("no codes files to ingest");
  IMSAT_ASSIGN_OR_RETURN(const std::vector<Shard> parts, read_shard_headers(request));
  const CodesFile& first = parts.front().header;
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
    items.source = io::source_name(f.source);
    items.source_json = nlohmann::json(items.source).dump();
    items.first_row = f.first_row;
    if (!request.overwrite && store->info().items > 0) {
      IMSAT_RETURN_IF_ERROR(refuse_held_keys(
          *store, request.db, parts[j].path, done, f.rows,
          [&](size_t i) { return items.key_prefix + std::to_string(items.first_row + i); },
          "ingest"));
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
