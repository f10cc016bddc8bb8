// Store administration both front-ends offer: creating an empty store and repairing a damaged one.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/status.h"

namespace imsat::query {

// Creates an empty store of `bits`-bit codes at `db` (recording the model's fingerprint when a
// model path is given). InvalidArgument when something other than an empty folder is there.
Status create_store(const std::string& db, int bits, const std::string& model_path = "");

// The model a store's codes were made with: the path `imsat index` or create_store recorded.
// InvalidArgument saying what to do when the store records none, or when the file is gone or no
// longer the model whose codes the store holds (what `search --image` says when QueryEngine::open
// found no model to use).
Result<std::string> recorded_model(const std::string& db);

struct RepairReport {
  std::string backup;                    // where the damaged files were copied first
  std::optional<uint64_t> items_before;  // acknowledged items before the damage, when known
  uint64_t items_after = 0;              // items the repaired store holds
};
// Repairs a damaged store (index::CodeStore::repair): only when asked, after copying it.
Result<RepairReport> repair_store(const std::string& db);

// The Hamming distance kernel this CPU runs (avx512, avx2 or scalar), for info and inspect.
std::string hamming_kernel_name();

}  // namespace imsat::query
