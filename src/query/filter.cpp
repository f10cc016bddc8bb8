// query::Filter: JSON to the index's MetadataFilter, once.
#include "query/filter.h"

#include <limits>
#include <nlohmann/json.hpp>

#include "index/metadata_filter.h"

namespace imsat::query {

static_assert(kDefaultMaxFilterTerms == index::kDefaultMaxFilterTerms,
              "the query layer's default filter limit is the index's");

Result<Filter> Filter::from_json(const nlohmann::json& j, size_t max_terms) {
  if (!j.is_object()) return Status::invalid_argument("filter: must be a JSON object");
  Filter f;
  if (j.size() == 1 && j.contains("label")) {
    // The first filter form, {"label": 3}: the item's label.
    const nlohmann::json& label = j["label"];
    if (!label.is_number_integer()) {
      return Status::invalid_argument("'filter.label' must be an integer");
    }
    // Unsigned values above INT64_MAX do not fit get<int64_t>: checked first.
    const bool too_large =
        label.is_number_unsigned()
            ? label.get<uint64_t>() > uint64_t{std::numeric_limits<int32_t>::max()}
            : label.get<int64_t>() > std::numeric_limits<int32_t>::max();
    if (too_large || (!label.is_number_unsigned() && label.get<int64_t>() < 0)) {
      return Status::invalid_argument("'filter.label' is out of range (0 to 2147483647)");
    }
    return from_json({{"must", {{{"key", "label"}, {"match", label}}}}}, max_terms);
  }
  IMSAT_ASSIGN_OR_RETURN(index::MetadataFilter parsed, index::parse_metadata_filter(j, max_terms));
  if (!parsed.empty()) f.filter_ = std::make_shared<const index::MetadataFilter>(std::move(parsed));
  return f;
}

Result<Filter> Filter::from_text(const std::string& text, size_t max_terms) {
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::invalid_argument("filter: not valid JSON");
  return from_json(j, max_terms);
}

Result<Filter> Filter::with_label(int32_t label) const {
  IMSAT_ASSIGN_OR_RETURN(Filter both, from_json(nlohmann::json{{"label", label}}));
  if (empty()) return both;
  // {"must": [{"key": "label", "match": L}, THIS]}: this filter as a nested condition.
  index::MetadataFilter combined = *both.filter_;
  index::Condition nested;
  nested.kind = index::Condition::Kind::kNested;
  nested.nested = filter_;
  combined.must.push_back(std::move(nested));
  combined.terms += filter_->terms;
  // The canonical text parse_metadata_filter would give the same filter written out in JSON.
  combined.canonical.resize(combined.canonical.size() - 2);  // the closing "]}"
  combined.canonical += "," + filter_->canonical + "]}";
  both.filter_ = std::make_shared<const index::MetadataFilter>(std::move(combined));
  return both;
}

bool Filter::empty() const { return filter_ == nullptr || filter_->empty(); }

size_t Filter::terms() const { return filter_ == nullptr ? 0 : filter_->terms; }

}  // namespace imsat::query
