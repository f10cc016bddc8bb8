// Bulk indexing: a dataset (encoded through a model) or a codes file into a durable store, in
// resumable atomic batches; and the one conversion of dataset rows to store items.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/status.h"
#include "index/code_store.h"
#include "learn/learn.h"
#include "query/codes_file.h"

namespace imsat::query {

// How rows become items: key = key_prefix + the row's key (image files: the relative path or the
// manifest's key) or row number, tag = the row's label, metadata {"source", "row", "label",
// "split"} (split when the dataset has its own train/test) with the row's own metadata (image
// files: path, label_name, manifest columns), the raw vector when with_vectors, and the row's
// thumbnail when the dataset kept one.
struct ItemOptions {
  std::string key_prefix;
  std::string source;       // recorded in the metadata (a file name)
  std::string source_json;  // `source` as a JSON string (computed once; "" = make_item does it)
  size_t first_row = 0;     // row numbers (keys of codes files, metadata) start here (shards)
  bool with_vectors = false;
  bool unit_vectors = false;  // vectors are scaled to unit length (a cosine model's store)
};

// Row `row` of packed `codes` (bits / 8 bytes each) as a store item. `labels` is empty or one
// per row; `data` (for vectors and the split) may be null.
void make_item(const std::vector<uint8_t>& codes, int bits, const std::vector<int32_t>& labels,
               const learn::Dataset* data, size_t train_rows, const ItemOptions& options,
               size_t row, index::Item* out);
// Every row of `data` with its codes as items.
std::vector<index::Item> dataset_items(const learn::Dataset& data,
                                       const std::vector<uint8_t>& codes, int bits,
                                       const ItemOptions& options);

// Codes of every row of `data` (rows * bits / 8 bytes), encoded in chunks of 1,024 rows with
// progress(done, total) after each. InvalidArgument when the dimension differs from the model's.
Result<std::vector<uint8_t>> encode_dataset(
    const learn::Model& model, const learn::Dataset& data,
    const std::function<void(size_t done, size_t total)>& progress = nullptr);

struct IndexRequest {
  std::string db;
  std::string model;   // needed for raw data; empty for a codes file
  std::string data;    // dataset path or codes file
  std::string labels;  // IDX labels for an IDX image file
  // For a folder of image files or a manifest (images.manifest): the import settings; the
  // pipeline is always the model's. `import_report` (may be null) receives what was skipped.
  io::ImageImport images;
  io::ImportReport* import_report = nullptr;
  ItemOptions items;
  std::string job;   // resumable job name; empty: derived from everything that changes the result
  size_t batch = 0;  // items per atomic batch; 0: 50,000, or 2,048 for image files
  int tables = 0;    // multi-index tables when the store is created (0 = automatic)
  // Writing over keys the store already holds from another source replaces them only when set.
  bool overwrite = false;
  // Called with (stage, done, total): stage is "encode" (rows, before they are written) or
  // "index" (source positions written; image files are read, encoded and written as they go).
  std::function<void(const char* stage, size_t done, size_t total)> progress;
};

struct IndexReport {
  std::string job;
  size_t rows = 0;          // items in the source
  size_t done_before = 0;   // committed by an earlier run of the same job
  size_t indexed = 0;       // committed by this run
  size_t store_items = 0;   // live items in the store afterwards
  double read_seconds = 0;  // reading the source (image files: the scan) before writing began
  bool already_done = false;
};

// Reads the source, checks it against the model and the store (before the store is created or
// touched), encodes, and bulk-loads it; image files stream through in batches. A crashed run
// resumes where it stopped when called again with the same request; a finished one is skipped.
// Errors: InvalidArgument (wrong dimension,
// --model with a codes file, vectors without raw data, keys already held from another source
// without overwrite), the reader's and the store's errors.
Result<IndexReport> index_dataset(const IndexRequest& request);

// The resumable job name of a shard's codes file: the model, the shard, its rows, the key prefix
// and a hash of its contents (not its path, so moved or copied files are recognised).
std::string shard_job_name(const CodesFile& f, const std::string& key_prefix);

struct IngestRequest {
  std::string db;                  // created when missing
  std::vector<std::string> files;  // codes files of shards (`imsat encode --shard I/N`)
  std::string key_prefix;          // keys are this prefix followed by the global row number
  size_t batch = 200000;           // items per staged batch
  bool overwrite = false;          // replace keys the store holds from another source
  std::function<void(size_t staged)> progress;
};

struct IngestReport {
  struct Shard {
    std::string path, shard;
    size_t rows = 0;
    bool already_done = false;  // ingested by an earlier run: skipped
    size_t done_before = 0;     // rows a crashed bulk load had committed (continued from there)
  };
  std::vector<Shard> shards;  // in row order
  size_t added = 0;
  size_t store_items = 0;
};

// Adds the codes files of a dataset's shards to a store in one atomic step
// (CodeStore::bulk_load_atomic): every file is checked first (format, code length, model
// fingerprint against each other and the store, disjoint rows) and a wrong one is refused before
// the store is created or written; shards an earlier run ingested are skipped. Without
// `overwrite`, a shard whose keys the store already holds (from another source, or the same rows
// with other settings) is refused, naming the first such keys and how many, as index_dataset
// refuses them. Killed or failed
// before it returns, the store is as it was and running it again does the step again.
Result<IngestReport> ingest_codes_files(const IngestRequest& request);

}  // namespace imsat::query
