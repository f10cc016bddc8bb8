// imsat::query::Catalog — named collections in a data directory, each one code store with its
// model (or none, for code-only collections), and their snapshots.
//
// Layout of a data directory (every name validated by check_collection_name, so no name reaches
// outside it):
//   DIR/NAME/store/               the code store (RocksDB)
//   DIR/NAME/model                the collection's hash model (absent: code-only)
//   DIR/NAME/snapshots/ID/        a snapshot: store/ (a RocksDB checkpoint) and model
//   DIR/NAME/DROPPED              marks a collection being dropped (removed at the next open)
//   DIR/.NAME.partial, .NAME.restoring, .NAME.replaced, .NAME.dropped, NAME/snapshots/ID.partial,
//   NAME/snapshots/.ID.deleting   work in progress: finished or removed at the next open
//                                 (recover_data_dir)
// `imsat serve --db STORE` serves one collection over a store folder anywhere (Catalog::single);
// its snapshots go to STORE.snapshots/.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "query/engine.h"

namespace imsat::query {

constexpr size_t kMaxCollectionName = 64;
// InvalidArgument unless `name` is 1-64 letters, digits, '-' or '_'.
Status check_collection_name(const std::string& name);

// One collection: a query engine and where its files are. Shared by the requests using it; a
// dropped collection's folder is removed when the last user lets go.
class Collection {
 public:
  ~Collection();
  const std::string& name() const { return name_; }
  QueryEngine& engine() const { return *engine_; }
  const std::string& store_path() const { return store_path_; }
  const std::string& model_path() const { return model_path_; }  // "" without a model
  const std::string& snapshot_root() const { return snapshot_root_; }
  bool owns_files() const { return !folder_.empty(); }
  // The primary store this collection follows ("" when it is not a follower).
  const std::string& primary() const { return primary_; }

 private:
  friend class Catalog;
  Collection() = default;
  std::string name_, folder_, store_path_, model_path_, snapshot_root_, primary_;
  std::string secondary_dir_;  // the follower's own RocksDB files, removed with it
  std::unique_ptr<QueryEngine> owned_;
  QueryEngine* engine_ = nullptr;
  bool dropped_ = false;  // set once, under the catalog's mutex, before the last reference goes
};

struct CollectionSpec {
  int bits = 0;             // required without a model; must equal the model's with one
  std::string model_path;   // a model file on this machine to copy into the collection
  std::string model_bytes;  // or the bytes of one (a client's upload); neither = code-only
  // Asked by a client over the network: errors about `model_path` (outside a models folder) do
  // not tell whether the path exists or what it is.
  bool remote = false;
  int tables = 0;  // multi-index tables (0 = chosen from bits and expected_items)
  size_t expected_items = 1000000;
};

struct SnapshotInfo {
  std::string id;      // sortable: UTC time of creation and a sequence number
  std::string path;    // the snapshot's folder
  uint64_t bytes = 0;  // files in the folder (SST files are hard links shared with the store)
  int64_t created_unix = 0;
  bool has_model = false;
};

class Catalog {
 public:
  // Opens every collection of a data directory (created when missing), holding the directory's
  // lock until destroyed: InvalidArgument when another process (or Catalog) holds it. What an
  // interrupted command left is finished or removed first (recover_data_dir).
  // `cache_vectors`: load stored vectors for exact re-ranking, held as `precision`.
  static Result<std::unique_ptr<Catalog>> open(
      const std::string& data_dir, bool cache_vectors = false, size_t cache_mb = 0,
      VectorPrecision precision = VectorPrecision::kFloat32);
  // One collection named `name` over an existing store folder (and optional model file).
  static Result<std::unique_ptr<Catalog>> single(
      const std::string& name, const std::string& store_path, const std::string& model_path,
      bool cache_vectors = false, size_t cache_mb = 0,
      VectorPrecision precision = VectorPrecision::kFloat32);
  // One collection named `name` that follows the store at `primary` (written by another
  // process): a RocksDB secondary instance caught up every `interval_ms`; writes are refused.
  static Result<std::unique_ptr<Catalog>> follower(const std::string& name,
                                                   const std::string& primary,
                                                   const std::string& model_path, int interval_ms,
                                                   size_t cache_mb = 0);
  // One collection named `name` serving, read-only, the snapshot at `path` and then each
  // snapshot that replaces it: the way a machine without the primary's disk follows it. `path` is
  // usually a symbolic link that a deployment swaps atomically after copying a newer snapshot
  // over (rsync, scp, a shared file system):  ln -s snapshots/NEW next && mv -T next current.
  // It names a snapshot folder (store/ and an optional model, as `imsat snapshot create` makes
  // them) or a store folder; `model_path` ("" = the snapshot's own model, if any) serves vector
  // queries. Every `interval_ms` the path is resolved again; when it names another folder, that
  // folder is opened read-only and checked (the same code length), then served in place of the
  // old one, whose requests in flight finish on it. A folder that cannot be opened is reported
  // (follow_status) and the old one kept. Writes are refused, naming `path`.
  static Result<std::unique_ptr<Catalog>> snapshot_follower(const std::string& name,
                                                            const std::string& path,
                                                            const std::string& model_path,
                                                            int interval_ms, size_t cache_mb = 0);
  struct FollowStatus {
    std::string serving;  // the folder served now (the resolved path)
    size_t swaps = 0;     // snapshots taken up since the start
    std::string error;    // why the last new folder was not taken up ("" when it was)
    uint64_t checks = 0;  // times the path was resolved again
  };
  FollowStatus follow_status() const;
  // Blocks until the path has been checked twice more, so that a check began after the call
  // (tests: a link swapped before the call has been seen), or `timeout` passed.
  FollowStatus wait_for_follow_check(std::chrono::milliseconds timeout) const;
  // Wraps an engine the caller keeps (tests, embedding): one collection, not removable.
  static std::unique_ptr<Catalog> wrap(QueryEngine& engine, const std::string& name = "default");
  ~Catalog();

  const std::string& data_dir() const { return data_dir_; }
  std::vector<std::shared_ptr<Collection>> list() const;            // sorted by name
  std::shared_ptr<Collection> find(const std::string& name) const;  // nullptr when unknown
  // The collection un-prefixed requests use: the one set, or the only one; nullptr otherwise.
  std::shared_ptr<Collection> default_collection() const;
  std::string default_name() const;
  Status set_default(const std::string& name);  // NotFound for an unknown name

  // Creates an empty collection (a data directory only). The name is claimed first, atomically:
  // AlreadyExists when it is in use or being created. InvalidArgument for a bad name or spec,
  // and for a model that is not a regular, readable model file of at most 1 GiB (named by path:
  // under the models folder when one is set; errors never tell what else exists on the server).
  Result<std::shared_ptr<Collection>> create(const std::string& name, const CollectionSpec& spec);
  // Where `model` paths of create() must lie ("" = anywhere the server may read).
  void set_models_dir(const std::string& dir);
  // Removes a collection: it disappears from the catalog now, its folder once no request uses
  // it. InvalidArgument for a collection this catalog does not own the files of.
  Status drop(const std::string& name);

  // How every collection's searches by vector share model calls (QueryEngine::
  // set_encode_batching), now and for collections opened or created later. Call before serving.
  void set_encode_batching(const EncodeBatchOptions& options);

  // Snapshots of a collection (its store as a RocksDB checkpoint, and its model).
  Result<SnapshotInfo> create_snapshot(const std::string& name);
  Result<std::vector<SnapshotInfo>> snapshots(const std::string& name) const;
  Status delete_snapshot(const std::string& name, const std::string& id);
  // Restores snapshot `id` of collection `name` as a new collection `as` and serves it (the
  // name claimed first, as create() does). AlreadyExists when `as` is in use; NotFound for an
  // unknown snapshot. Replacing a served collection in place needs the server stopped (`imsat
  // snapshot restore --force`).
  Result<std::shared_ptr<Collection>> restore_snapshot(const std::string& name,
                                                       const std::string& id,
                                                       const std::string& as);
  // The snapshot folder of snapshot `id` of collection `name` (store/ and model). NotFound for an
  // unknown one.
  Result<std::string> snapshot_folder(const std::string& name, const std::string& id) const;
  // Snapshot `id` of collection `name` as one zip file (store/... and model), written to a
  // temporary file in the data directory whose path is returned: the caller removes it (a crash
  // leaves it to the next open's clean-up).
  Result<std::string> snapshot_archive(const std::string& name, const std::string& id) const;

 private:
  Catalog() = default;
  Result<std::shared_ptr<Collection>> load(const std::string& name, const std::string& folder);
  // `c`, or, when it was opened read-only on a full disk and there is room again, the same
  // collection opened anew in its place (under mutex_).
  std::shared_ptr<Collection> writable_again(const std::shared_ptr<Collection>& c) const;
  // Opens c's store (writable, as far as its disk allows) and model into c.owned_, and loads its
  // vectors when the catalog caches them.
  Status open_engine(Collection& c) const;
  // create()'s work once the name is claimed.
  Result<std::shared_ptr<Collection>> build(const std::string& name, const CollectionSpec& spec,
                                            const std::string& models_dir);
  // A snapshot folder (store/ and model) or a store folder, opened read-only as a collection that
  // refuses writes, naming `followed` (snapshot_follower).
  static Result<std::shared_ptr<Collection>> open_followed(const std::string& name,
                                                           const std::string& followed,
                                                           const std::string& folder,
                                                           const std::string& model_path,
                                                           size_t cache_mb);
  std::string data_dir_;        // "" for single() and wrap()
  std::shared_ptr<void> lock_;  // the data directory's lock (open() holds it; data_dir_internal.h)
  bool cache_vectors_ = false;
  VectorPrecision cache_precision_ = VectorPrecision::kFloat32;
  size_t cache_mb_ = 0;  // each store's block cache (0 = the default)
  EncodeBatchOptions encode_batching_;
  mutable std::mutex mutex_;
  mutable std::map<std::string, std::shared_ptr<Collection>> collections_;  // writable_again
  std::set<std::string> creating_;  // names claimed by a create() in progress
  std::string models_dir_;
  std::string default_;
  std::mutex snapshot_mutex_;  // one snapshot at a time
  // snapshot_follower's thread and what it reports.
  std::thread follow_thread_;
  mutable std::mutex follow_mutex_;
  std::condition_variable follow_wake_;
  mutable std::condition_variable follow_checked_;
  bool follow_stop_ = false;
  FollowStatus follow_status_;
};

// Offline operations on a data directory (no server running on it).
// Snapshots of a collection, newest last (`imsat snapshot list`).
Result<std::vector<SnapshotInfo>> list_snapshots(const std::string& snapshot_root);
// Finishes or removes what a crash interrupted in a data directory: a restore whose intent
// record exists is rolled forward, a collection marked DROPPED removed, and partial collections
// and snapshots, replaced or dropped folders, snapshots being deleted and staged uploads
// removed. Returns how many were finished or removed. Catalog::open and restore_snapshot run it
// holding the directory's lock; `imsat snapshot list` runs it only when it can take the lock.
// Never call it while another process may write the directory.
Result<size_t> recover_data_dir(const std::string& data_dir);
// recover_data_dir holding the directory's lock, or nothing (0) while a server or another command
// holds it.
Result<size_t> recover_data_dir_if_unused(const std::string& data_dir);
// Restores snapshot `id` of collection `from` as collection `to` (a new one, or replacing `to`
// with `force`; AlreadyExists without it). The copy opens with what the snapshot holds and
// nothing after; a replaced collection's snapshots stay with the name. Killed at any point, the
// next open (or restore) finishes the restore or leaves the data directory as it was. With
// `force` it needs the directory's lock (InvalidArgument while a server uses the directory); a
// restore under a new name may run beside a server, which sees the collection at its next start.
Status restore_snapshot(const std::string& data_dir, const std::string& from, const std::string& id,
                        const std::string& to, bool force);
// The folder of a collection in a data directory (its name checked first).
Result<std::string> collection_folder(const std::string& data_dir, const std::string& name);

}  // namespace imsat::query
