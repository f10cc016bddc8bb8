// imsat enum names: one table of {value, name} pairs per enum gives both directions, so that an
// enum's names are written once (no switch to keep in step with a parser).
//
//   constexpr EnumName<Fit> kFitNames[] = {{Fit::kPad, "pad"}, {Fit::kCrop, "crop"}};
//   name_of(kFitNames, Fit::kCrop)   -> "crop"
//   value_of(kFitNames, "pad")       -> Fit::kPad (std::nullopt for an unknown name)
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace imsat {

template <typename E>
struct EnumName {
  E value;
  const char* name;
};

// The name of `value`; `fallback` for a value the table lacks.
template <typename E, size_t N>
constexpr const char* name_of(const EnumName<E> (&table)[N], E value, const char* fallback = "?") {
  for (const EnumName<E>& e : table) {
    if (e.value == value) return e.name;
  }
  return fallback;
}

template <typename E, size_t N>
std::optional<E> value_of(const EnumName<E> (&table)[N], std::string_view name) {
  for (const EnumName<E>& e : table) {
    if (name == e.name) return e.value;
  }
  return std::nullopt;
}

// "a, b or c": the names a parser accepts, for its error message.
template <typename E, size_t N>
std::string names_of(const EnumName<E> (&table)[N]) {
  std::string out;
  for (size_t i = 0; i < N; ++i) {
    if (i > 0) out += i + 1 == N ? " or " : ", ";
    out += table[i].name;
  }
  return out;
}

}  // namespace imsat
