// Creating and repairing stores.
#include "query/store_admin.h"

#include <filesystem>

#include "index/code_store.h"
#include "index/hamming.h"
#include "learn/learn.h"
#include "query/engine.h"
#include "query/metric.h"

namespace imsat::query {

Status create_store(const std::string& db, int bits, const std::string& model_path) {
  index::StoreOptions o;
  o.bits = bits;
  if (!model_path.empty()) {
    IMSAT_ASSIGN_OR_RETURN(const learn::Model model, learn::Model::load(model_path));
    if (model.is_clustering()) {
      return Status::invalid_argument(model_path + ": a clustering model; a hash model is needed");
    }
    o.model_fingerprint = model.fingerprint();
    o.metric = metric_of(model);
  }
  IMSAT_ASSIGN_OR_RETURN(std::unique_ptr<index::CodeStore> store, index::CodeStore::open(db, o));
  if (!model_path.empty()) {
    IMSAT_RETURN_IF_ERROR(store->record_model_path(std::filesystem::absolute(model_path).string()));
  }
  return Status::ok();  // created, and closed again
}

Result<learn::Model> load_recorded_model(const index::CodeStore& store, const std::string& db) {
  IMSAT_ASSIGN_OR_RETURN(const std::string path, store.model_path());
  if (path.empty()) {
    return Status::invalid_argument(db +
                                    " records no model (its codes came from a codes file or "
                                    "another tool); pass --model");
  }
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return Status::invalid_argument(db + " was indexed with the model " + path +
                                    ", which is no longer there; pass --model");
  }
  Result<learn::Model> model = learn::Model::load(path);
  const std::string held = store.info().model_fingerprint;
  if (!model.is_ok() || (!held.empty() && model->fingerprint() != held) ||
      model->bits() != store.bits()) {
    return Status::invalid_argument(db + " was indexed with the model " + path + ", which " +
                                    (model.is_ok()
                                         ? std::string("has been replaced by another model")
                                         : "no longer loads (" + model.status().message() + ")") +
                                    "; pass --model");
  }
  return model;
}

Result<std::string> recorded_model(const std::string& db) {
  index::StoreOptions o;
  o.read_only = true;
  o.create_if_missing = false;
  IMSAT_ASSIGN_OR_RETURN(std::unique_ptr<index::CodeStore> store, index::CodeStore::open(db, o));
  IMSAT_RETURN_IF_ERROR(load_recorded_model(*store, db).status());
  return store->model_path();
}

Result<RepairReport> repair_store(const std::string& db) {
  IMSAT_ASSIGN_OR_RETURN(const index::CodeStore::RepairReport r, index::CodeStore::repair(db));
  RepairReport out;
  out.backup = r.backup;
  out.items_before = r.items_before;
  out.items_after = r.items_after;
  return out;
}

std::string hamming_kernel_name() { return std::string(index::active_kernel_name()); }

}  // namespace imsat::query
