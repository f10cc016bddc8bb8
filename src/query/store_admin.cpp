// Creating and repairing stores.
#include "query/store_admin.h"

#include "index/code_store.h"
#include "learn/learn.h"

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
  }
  IMSAT_ASSIGN_OR_RETURN(std::unique_ptr<index::CodeStore> store, index::CodeStore::open(db, o));
  return Status::ok();  // created, and closed again
}

Result<RepairReport> repair_store(const std::string& db) {
  IMSAT_ASSIGN_OR_RETURN(const index::CodeStore::RepairReport r, index::CodeStore::repair(db));
  RepairReport out;
  out.backup = r.backup;
  out.items_before = r.items_before;
  out.items_after = r.items_after;
  return out;
}

}  // namespace imsat::query
