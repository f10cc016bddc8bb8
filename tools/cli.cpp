// Helpers shared by the subcommands.
#include "cli.h"

#include <algorithm>
#include <cstdio>

#include "common/code_bits.h"

namespace imsat::cli {

std::vector<int> parse_hidden(const std::string& s) {
  std::vector<int> out;
  if (s.empty() || s == "none" || s == "linear") return out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find('-', start);
    if (end == std::string::npos) end = s.size();
    const std::string part = s.substr(start, end - start);
    size_t used = 0;
    int v = 0;
    try {
      v = std::stoi(part, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != part.size() || v <= 0) {
      throw UsageError("--hidden: expected sizes like 400-400, got '" + s + "'");
    }
    out.push_back(v);
    start = end + 1;
  }
  return out;
}

const CLI::Validator& code_bits_validator() {
  static const CLI::Validator v(
      [](std::string& value) -> std::string {
        int bits = 0;
        try {
          size_t used = 0;
          bits = std::stoi(value, &used);
          if (used != value.size()) return "expected an integer, got '" + value + "'";
        } catch (const std::exception&) {
          return "expected an integer, got '" + value + "'";
        }
        const Status s = check_code_bits(bits);
        return s.is_ok() ? std::string() : s.message();
      },
      "BITS (multiple of 8, 8..1024)");
  return v;
}

std::vector<std::string> method_names(bool with_kmeans) {
  std::vector<std::string> out = {"imsat-vat",  "imsat-rpt", "linear-imsat", "deep-rim",
                                  "linear-rim", "itq",       "sh",           "lsh"};
  if (with_kmeans) out.push_back("kmeans");
  return out;
}

void print_json_line(const std::string& line) {
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fputc('\n', stdout);
}

}  // namespace imsat::cli
