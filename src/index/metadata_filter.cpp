// Metadata filters: parsing the JSON filter language, evaluating it on one item's metadata, and
// the term encoding of indexed fields.
#include "index/metadata_filter.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

namespace imsat::index {
namespace {

using json = nlohmann::json;

constexpr int kMaxDepth = 8;

Status bad(const std::string& where, const std::string& what) {
  return Status::invalid_argument(where + ": " + what);
}

Result<FieldValue> scalar(const json& v, const std::string& where) {
  FieldValue out;
  if (v.is_string()) {
    out.kind = FieldValue::Kind::kString;
    out.text = v.get<std::string>();
  } else if (v.is_boolean()) {
    out.kind = FieldValue::Kind::kBool;
    out.boolean = v.get<bool>();
  } else if (v.is_number()) {
    out.kind = FieldValue::Kind::kNumber;
    out.number = v.get<double>();
    if (!std::isfinite(out.number)) return bad(where, "the number is not finite");
  } else {
    return bad(where,
               "expected a string, a number or a boolean, got " + std::string(v.type_name()));
  }
  return out;
}

Status parse_filter(const json& j, const std::string& where, int depth, MetadataFilter* out);

// Up to this many match_any values are compared one by one; more go into hash sets.
constexpr size_t kLinearMatchValues = 8;

std::shared_ptr<const ValueSets> value_sets(const std::vector<FieldValue>& values) {
  auto sets = std::make_shared<ValueSets>();
  for (const FieldValue& v : values) {
    switch (v.kind) {
      case FieldValue::Kind::kString:
        sets->strings.insert(v.text);
        break;
      case FieldValue::Kind::kNumber:
        sets->numbers.insert(v.number == 0 ? 0.0 : v.number);
        break;
      case FieldValue::Kind::kBool:
        (v.boolean ? sets->has_true : sets->has_false) = true;
        break;
    }
  }
  return sets;
}

// {"has_key": "a"} or {"has_key": ["a", "b"]}.
Status parse_has_key(const json& c, const std::string& where, Condition* out) {
  for (auto it = c.begin(); it != c.end(); ++it) {
    if (it.key() != "has_key") {
      return bad(where, "unknown field '" + it.key() + "' beside 'has_key'");
    }
  }
  const json& keys = c["has_key"];
  if (keys.is_string()) {
    out->keys.push_back(keys.get<std::string>());
  } else if (keys.is_array() && !keys.empty()) {
    for (const json& k : keys) {
      if (!k.is_string() || k.get<std::string>().empty()) {
        return bad(where, "'has_key' must list non-empty strings");
      }
      out->keys.push_back(k.get<std::string>());
    }
  } else {
    return bad(where, "'has_key' must be a string or a non-empty array of strings");
  }
  out->kind = Condition::Kind::kHasKey;
  return Status::ok();
}

// "range": {"gt": .., "gte": .., "lt": .., "lte": ..} of finite numbers.
Status parse_range(const json& r, const std::string& where, Condition* out) {
  out->kind = Condition::Kind::kRange;
  if (!r.is_object() || r.empty()) {
    return bad(where + ".range", "expected an object with gt, gte, lt or lte");
  }
  for (auto it = r.begin(); it != r.end(); ++it) {
    const std::string at = where + ".range." + it.key();
    if (!it->is_number() || !std::isfinite(it->get<double>())) {
      return bad(at, "expected a finite number");
    }
    const double x = it->get<double>();
    if (it.key() == "gt") {
      out->gt = x;
    } else if (it.key() == "gte") {
      out->gte = x;
    } else if (it.key() == "lt") {
      out->lt = x;
    } else if (it.key() == "lte") {
      out->lte = x;
    } else {
      return bad(at, "unknown bound (gt, gte, lt, lte)");
    }
  }
  return Status::ok();
}

Status parse_condition(const json& c, const std::string& where, int depth, Condition* out) {
  if (!c.is_object()) return bad(where, "a condition must be a JSON object");
  if (c.contains("must") || c.contains("should") || c.contains("must_not")) {
    auto nested = std::make_shared<MetadataFilter>();
    IMSAT_RETURN_IF_ERROR(parse_filter(c, where, depth + 1, nested.get()));
    out->kind = Condition::Kind::kNested;
    out->nested = std::move(nested);
    return Status::ok();
  }
  if (c.contains("has_key")) return parse_has_key(c, where, out);
  int operators = 0;
  for (auto it = c.begin(); it != c.end(); ++it) {
    const std::string& name = it.key();
    if (name == "match" || name == "match_any" || name == "range") {
      ++operators;
    } else if (name != "key") {
      return bad(where, "unknown field '" + name +
                            "' (a condition has 'key' and one of 'match', 'match_any', "
                            "'range'; or 'has_key'; or 'must'/'should'/'must_not')");
    }
  }
  if (!c.contains("key") || !c["key"].is_string() || c["key"].get<std::string>().empty()) {
    return bad(where, "a condition needs a non-empty string 'key'");
  }
  if (operators != 1) {
    return bad(where, "give exactly one of 'match', 'match_any' or 'range'");
  }
  out->key = c["key"].get<std::string>();
  const bool label = out->key == kLabelField;
  if (c.contains("match")) {
    out->kind = Condition::Kind::kMatch;
    IMSAT_ASSIGN_OR_RETURN(FieldValue v, scalar(c["match"], where + ".match"));
    if (label && (v.kind != FieldValue::Kind::kNumber || v.number != std::floor(v.number))) {
      return bad(where + ".match", "a label is an integer");
    }
    out->values.push_back(std::move(v));
  } else if (c.contains("match_any")) {
    out->kind = Condition::Kind::kMatchAny;
    const json& values = c["match_any"];
    if (!values.is_array() || values.empty()) {
      return bad(where + ".match_any", "expected a non-empty array of values");
    }
    for (size_t i = 0; i < values.size(); ++i) {
      const std::string at = where + ".match_any[" + std::to_string(i) + "]";
      IMSAT_ASSIGN_OR_RETURN(FieldValue v, scalar(values[i], at));
      if (label && (v.kind != FieldValue::Kind::kNumber || v.number != std::floor(v.number))) {
        return bad(at, "a label is an integer");
      }
      out->values.push_back(std::move(v));
    }
  } else {
    IMSAT_RETURN_IF_ERROR(parse_range(c["range"], where, out));
  }
  return Status::ok();
}

Status parse_filter(const json& j, const std::string& where, int depth, MetadataFilter* out) {
  if (depth > kMaxDepth) return bad(where, "filters nest too deeply");
  if (!j.is_object()) return bad(where, "a filter must be a JSON object");
  for (auto it = j.begin(); it != j.end(); ++it) {
    std::vector<Condition>* list = it.key() == "must"       ? &out->must
                                   : it.key() == "should"   ? &out->should
                                   : it.key() == "must_not" ? &out->must_not
                                                            : nullptr;
    const std::string at = where + "." + it.key();
    if (list == nullptr) {
      return bad(where, "unknown field '" + it.key() + "' (must, should, must_not)");
    }
    // A single condition may stand without the array.
    const json conditions = it->is_array() ? *it : json::array({*it});
    for (size_t i = 0; i < conditions.size(); ++i) {
      Condition c;
      IMSAT_RETURN_IF_ERROR(
          parse_condition(conditions[i], at + "[" + std::to_string(i) + "]", depth, &c));
      out->terms += 1 + c.values.size() + c.keys.size() + (c.nested ? c.nested->terms : 0);
      if (c.kind == Condition::Kind::kMatchAny && c.values.size() > kLinearMatchValues) {
        c.sets = value_sets(c.values);
      }
      list->push_back(std::move(c));
    }
  }
  return Status::ok();
}

// The value at a dotted path of an object, or nullptr.
const json* lookup(const json& doc, const std::string& path) {
  if (!doc.is_object()) return nullptr;
  auto direct = doc.find(path);
  if (direct != doc.end()) return &*direct;
  const json* at = &doc;
  size_t start = 0;
  while (true) {
    const size_t dot = path.find('.', start);
    const std::string part = path.substr(start, dot == std::string::npos ? dot : dot - start);
    if (!at->is_object()) return nullptr;
    auto it = at->find(part);
    if (it == at->end()) return nullptr;
    at = &*it;
    if (dot == std::string::npos) return at;
    start = dot + 1;
  }
}

bool equal(const json& v, const FieldValue& want) {
  switch (want.kind) {
    case FieldValue::Kind::kString:
      return v.is_string() && v.get_ref<const std::string&>() == want.text;
    case FieldValue::Kind::kNumber:
      return v.is_number() && v.get<double>() == want.number;
    case FieldValue::Kind::kBool:
      return v.is_boolean() && v.get<bool>() == want.boolean;
  }
  return false;
}

// Whether the condition holds for one scalar value.
bool holds_scalar(const Condition& c, const json& v) {
  switch (c.kind) {
    case Condition::Kind::kMatch:
    case Condition::Kind::kMatchAny:
      if (c.sets != nullptr) {
        if (v.is_string()) return c.sets->strings.count(v.get_ref<const std::string&>()) > 0;
        if (v.is_number()) return c.sets->numbers.count(v.get<double>()) > 0;
        if (v.is_boolean()) return v.get<bool>() ? c.sets->has_true : c.sets->has_false;
        return false;
      }
      for (const FieldValue& want : c.values) {
        if (equal(v, want)) return true;
      }
      return false;
    case Condition::Kind::kRange:
      return v.is_number() && c.holds_for_number(v.get<double>());
    default:
      return false;
  }
}

bool passes(const MetadataFilter& f, const json& doc, int32_t label);

bool holds(const Condition& c, const json& doc, int32_t label) {
  if (c.kind == Condition::Kind::kNested) return passes(*c.nested, doc, label);
  if (c.kind == Condition::Kind::kHasKey) {
    for (const std::string& k : c.keys) {
      if (k == kLabelField) {
        if (label < 0) return false;
        continue;
      }
      const json* v = lookup(doc, k);
      if (v == nullptr || v->is_null()) return false;
    }
    return true;
  }
  if (c.key == kLabelField) {
    if (label < 0) return false;
    return holds_scalar(c, json(label));
  }
  const json* v = lookup(doc, c.key);
  if (v == nullptr) return false;
  if (v->is_array()) {
    for (const json& e : *v) {
      if (holds_scalar(c, e)) return true;
    }
    return false;
  }
  return holds_scalar(c, *v);
}

bool passes(const MetadataFilter& f, const json& doc, int32_t label) {
  for (const Condition& c : f.must) {
    if (!holds(c, doc, label)) return false;
  }
  for (const Condition& c : f.must_not) {
    if (holds(c, doc, label)) return false;
  }
  if (f.should.empty()) return true;
  for (const Condition& c : f.should) {
    if (holds(c, doc, label)) return true;
  }
  return false;
}

void collect_fields(const MetadataFilter& f, std::set<std::string>* out) {
  for (const auto* list : {&f.must, &f.should, &f.must_not}) {
    for (const Condition& c : *list) {
      if (c.kind == Condition::Kind::kNested) {
        collect_fields(*c.nested, out);
      } else if (c.kind == Condition::Kind::kHasKey) {
        out->insert(c.keys.begin(), c.keys.end());
      } else {
        out->insert(c.key);
      }
    }
  }
}

// Order-preserving 8-byte encoding of a double (big-endian; negative numbers flipped).
std::string encode_number(double x) {
  if (x == 0) x = 0;  // -0 and 0 are one value
  uint64_t bits;
  std::memcpy(&bits, &x, 8);
  bits = (bits >> 63) != 0 ? ~bits : bits ^ (uint64_t{1} << 63);
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(bits >> (56 - 8 * i));
  return out;
}

}  // namespace

bool Condition::holds_for_number(double x) const {
  if (gt && !(x > *gt)) return false;
  if (gte && !(x >= *gte)) return false;
  if (lt && !(x < *lt)) return false;
  if (lte && !(x <= *lte)) return false;
  return true;
}

std::vector<std::string> MetadataFilter::fields() const {
  std::set<std::string> names;
  collect_fields(*this, &names);
  return {names.begin(), names.end()};
}

Result<MetadataFilter> parse_metadata_filter(const std::string& json_text, size_t max_terms) {
  const json j = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::invalid_argument("filter: not valid JSON");
  return parse_metadata_filter(j, max_terms);
}

Result<MetadataFilter> parse_metadata_filter(const json& j, size_t max_terms) {
  MetadataFilter f;
  IMSAT_RETURN_IF_ERROR(parse_filter(j, "filter", 0, &f));
  if (f.terms > max_terms) {
    return Status::invalid_argument("filter: " + std::to_string(f.terms) +
                                    " conditions and values; the limit is " +
                                    std::to_string(max_terms) + " (max_filter_terms)");
  }
  f.canonical = j.dump();  // nlohmann's objects keep their keys sorted
  return f;
}

bool filter_matches(const MetadataFilter& filter, const std::string& metadata, int32_t label) {
  json doc;
  if (!metadata.empty()) doc = json::parse(metadata, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) doc = nullptr;
  return passes(filter, doc, label);
}

std::string field_prefix(const std::string& field) { return field + std::string(1, '\0'); }

std::string field_term(const std::string& field, const FieldValue& value) {
  std::string out = field_prefix(field);
  switch (value.kind) {
    case FieldValue::Kind::kString:
      out += 's';
      out += value.text;
      out += '\0';  // so "ab" is not a prefix of "abc"'s entries
      break;
    case FieldValue::Kind::kNumber:
      out += 'n';
      out += encode_number(value.number);
      break;
    case FieldValue::Kind::kBool:
      out += 'b';
      out += value.boolean ? '1' : '0';
      break;
  }
  return out;
}

std::vector<std::string> metadata_terms(const std::string& metadata,
                                        const std::vector<std::string>& fields) {
  std::vector<std::string> terms;
  if (metadata.empty() || fields.empty()) return terms;
  const json doc = json::parse(metadata, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) return terms;
  for (const std::string& field : fields) {
    const json* v = lookup(doc, field);
    if (v == nullptr) continue;
    const json values = v->is_array() ? *v : json::array({*v});
    std::set<std::string> seen;
    for (const json& e : values) {
      Result<FieldValue> s = scalar(e, field);
      if (!s.is_ok()) continue;  // objects, nulls and non-finite numbers are not indexed
      std::string term = field_term(field, *s);
      if (seen.insert(term).second) terms.push_back(std::move(term));
    }
  }
  return terms;
}

std::pair<std::string, std::string> number_term_range(const std::string& field,
                                                      const Condition& range) {
  const std::string prefix = field_prefix(field) + 'n';
  const double inf = std::numeric_limits<double>::infinity();
  double lo = -inf, hi = inf;
  bool hi_inclusive = true;
  if (range.gte) lo = std::max(lo, *range.gte);
  if (range.gt) lo = std::max(lo, std::nextafter(*range.gt, inf));
  if (range.lte) hi = std::min(hi, *range.lte);
  if (range.lt && *range.lt <= hi) {  // lt at or below lte: the stricter, exclusive bound
    hi = *range.lt;
    hi_inclusive = false;
  }
  const std::string begin = prefix + encode_number(lo);
  // Keys are term + id, so an exclusive end at the encoded bound leaves that value out, and the
  // next representable number includes it.
  const std::string end = prefix + encode_number(hi_inclusive ? std::nextafter(hi, inf) : hi);
  if (hi_inclusive && hi == inf) return {begin, field_prefix(field) + 'o'};
  return {begin, end};
}

Status check_field_name(const std::string& name) {
  if (name.empty()) return Status::invalid_argument("a field name must not be empty");
  if (name.size() > kMaxFieldNameBytes) {
    return Status::invalid_argument("field name is longer than " +
                                    std::to_string(kMaxFieldNameBytes) + " bytes");
  }
  for (const unsigned char c : name) {
    if (c < 0x20 || c == 0x7f) {
      return Status::invalid_argument(
          "a field name must not contain control characters (line breaks, tabs, NUL); found "
          "byte " +
          std::to_string(c));
    }
  }
  if (name == kLabelField) {
    return Status::invalid_argument("'label' is the item's label, always filterable from memory");
  }
  return Status::ok();
}

}  // namespace imsat::index
