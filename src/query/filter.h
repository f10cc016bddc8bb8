// imsat::query::Filter — which items a search, scroll, count or delete considers: a metadata
// filter in Qdrant's shape, {"must": [...], "should": [...], "must_not": [...]} of conditions on
// an item's metadata fields and its label (README, "Filters"), or the older {"label": L}. Parsed
// once from JSON; the only filter type the front-ends use (the index's own representation stays
// inside src/query and src/index).
#pragma once

#include <cstddef>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>

#include "common/status.h"

namespace imsat::index {
struct MetadataFilter;
}  // namespace imsat::index

namespace imsat::query {

// The most conditions and values (match_any elements) one filter holds by default: what it costs
// per item it is checked against grows with them.
inline constexpr size_t kDefaultMaxFilterTerms = 10000;

class Filter {
 public:
  Filter() = default;  // no filter: every item passes
  // InvalidArgument naming the position and what is wrong ("filter.must[1]: unknown field
  // 'mach'"), or the limit when the filter holds more than `max_terms` conditions and values.
  static Result<Filter> from_json(const nlohmann::json& j,
                                  size_t max_terms = kDefaultMaxFilterTerms);
  // The same from JSON text (the command line's --filter); InvalidArgument for text that is not
  // JSON.
  static Result<Filter> from_text(const std::string& text,
                                  size_t max_terms = kDefaultMaxFilterTerms);
  // This filter and "the item's label is `label`" (InvalidArgument for a negative label).
  Result<Filter> with_label(int32_t label) const;
  bool empty() const;    // no condition: every item passes
  size_t terms() const;  // conditions and values, nested ones included

  // The parsed filter, for the query layer's calls into the index (nullptr when empty).
  const index::MetadataFilter* get() const { return filter_.get(); }

 private:
  std::shared_ptr<const index::MetadataFilter> filter_;
};

}  // namespace imsat::query
