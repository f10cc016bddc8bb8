// imsat::index metadata filters — a filter language close to Qdrant's, over an item's metadata
// fields (JSON objects: strings, numbers, booleans, and arrays of them) and its label:
//
//   {"must": [C...], "should": [C...], "must_not": [C...]}
//   C = {"key": "color", "match": "red"}           equal (a number matches 3 and 3.0)
//     | {"key": "color", "match_any": ["red", 1]}  equal to any
//     | {"key": "price", "range": {"gte": 1, "lt": 10}}
//     | {"has_key": ["a", "b"]}                     every key present (not null)
//     | {"must": ..., "should": ..., "must_not": ...}   a nested filter
//
// An item passes when every `must` condition holds, at least one `should` condition holds (when
// there are any) and no `must_not` condition holds. Keys are dotted paths into nested objects
// ("size.width"); an array value holds when any element does. The key "label" is the item's label.
// Field terms (indexed fields) are encoded so that a prefix of the fields column family holds one
// value, and numbers sort by value.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "common/status.h"

namespace imsat::index {

constexpr const char* kLabelField = "label";
constexpr size_t kMaxFieldNameBytes = 256;

struct FieldValue {
  enum class Kind { kString, kNumber, kBool } kind = Kind::kString;
  std::string text;
  double number = 0;
  bool boolean = false;
};

struct MetadataFilter;

// The values of a match_any condition by kind, for a constant-time check per stored value.
struct ValueSets {
  std::unordered_set<std::string> strings;
  std::unordered_set<double> numbers;  // finite; 0 and -0 are one value
  bool has_true = false, has_false = false;
};

struct Condition {
  enum class Kind { kMatch, kMatchAny, kRange, kHasKey, kNested } kind = Kind::kMatch;
  std::string key;                 // kMatch, kMatchAny, kRange
  std::vector<FieldValue> values;  // kMatch (one), kMatchAny
  std::optional<double> gt, gte, lt, lte;
  std::vector<std::string> keys;  // kHasKey
  std::shared_ptr<const MetadataFilter> nested;
  std::shared_ptr<const ValueSets> sets;  // kMatchAny with more than a few values

  bool holds_for_number(double x) const;  // range bounds
};

struct MetadataFilter {
  std::vector<Condition> must, should, must_not;
  std::string canonical;  // the filter as compact JSON with sorted keys (a cache key)
  size_t terms = 0;       // conditions and values, nested ones included (its cost per item)
  bool empty() const { return must.empty() && should.empty() && must_not.empty(); }
  // Every field path the filter reads, label included, without repeats.
  std::vector<std::string> fields() const;
};

// The most values (of match and match_any) and conditions one filter may hold by default: what a
// filter costs per item it is checked against grows with them.
constexpr size_t kDefaultMaxFilterTerms = 10000;

// Parses a filter from JSON text. InvalidArgument naming the position and what is wrong
// ("filter.must[1]: unknown field 'mach'"), or the limit when the filter holds more than
// `max_terms` values and conditions in all.
Result<MetadataFilter> parse_metadata_filter(const std::string& json_text,
                                             size_t max_terms = kDefaultMaxFilterTerms);
// The same from parsed JSON (no second parse of text a caller has already read).
Result<MetadataFilter> parse_metadata_filter(const nlohmann::json& j,
                                             size_t max_terms = kDefaultMaxFilterTerms);

// Whether an item with this metadata (JSON text; "" or non-object = no fields) and label passes.
bool filter_matches(const MetadataFilter& filter, const std::string& metadata, int32_t label);

// Field index terms. The term of one value of field f: f, '\0', a type byte, the encoded value;
// followed by the item id (8 bytes, big-endian) it forms a fields column family key.
std::string field_term(const std::string& field, const FieldValue& value);
std::string field_prefix(const std::string& field);  // every term of the field
// The terms of `metadata` for each of `fields` (arrays: one per element; objects and null give
// none).
std::vector<std::string> metadata_terms(const std::string& metadata,
                                        const std::vector<std::string>& fields);
// The [begin, end) term range of numbers of `field` within a range condition's bounds.
std::pair<std::string, std::string> number_term_range(const std::string& field,
                                                      const Condition& range);
// InvalidArgument unless `name` can be an indexed field: 1 to kMaxFieldNameBytes bytes, no control
// characters (bytes below 0x20, and 0x7f), not "label".
Status check_field_name(const std::string& name);

}  // namespace imsat::index
