// Helpers shared by the `imsat` subcommands (tools/ only): error conventions, list parsing and
// the subcommands' registration functions, one per file.
//
// Exit codes: 0 success, 1 a runtime error (bad data, I/O, a failed operation), 2 a usage error
// (unknown flag, bad value, missing or conflicting options). Errors are one line on stderr.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/status.h"

namespace imsat::cli {

constexpr int kExitRuntimeError = 1;
constexpr int kExitUsageError = 2;

// A usage error found after parsing (e.g. options that only make sense together): exit 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Subcommands may throw: main turns this into one line on stderr and exit 1.
inline void check(const Status& s) {
  if (!s.is_ok()) throw std::runtime_error(s.message());
}
template <typename T>
T take(Result<T> r) {
  check(r.status());
  return std::move(r).value();
}

// "400-400" -> {400, 400}; "" or "none" or "linear" -> {}. UsageError otherwise.
std::vector<int> parse_hidden(const std::string& s);

// Validates --bits values: a multiple of 8 from 8 to 1024.
const CLI::Validator& code_bits_validator();
// The hashing methods (and kmeans when with_kmeans), for CLI::IsMember.
std::vector<std::string> method_names(bool with_kmeans);

// Prints `line` (a JSON document) to stdout as one line.
void print_json_line(const std::string& line);

// Settings from a file and the environment, for subcommands with many options:
// add_config_options gives `cmd` --config FILE (TOML: each option by its long name, at the top
// level or under [NAME-OF-SUBCOMMAND]) and --print-config; with `environment`, each option is
// also read from IMSAT_<NAME> (--max-body-bytes: IMSAT_MAX_BODY_BYTES).
void add_config_options(CLI::App* cmd, bool environment);
// The command line to parse, with the settings of the subcommand's --config file and of its
// environment variables added for every option the command line does not give, in that order of
// precedence: command line, environment, file. UsageError naming the key and the file for a key
// that is no option, and for a file that cannot be read.
std::vector<std::string> with_settings(CLI::App& app, int argc, char** argv);
// With --print-config: prints the merged settings as TOML (token options masked) and returns
// true, so that the subcommand's callback returns at once.
bool print_config_if_asked(const CLI::App* cmd);

// Registration of each subcommand (one file each).
void add_info(CLI::App& app);
void add_train(CLI::App& app);
void add_encode(CLI::App& app);
void add_index(CLI::App& app);
void add_search(CLI::App& app);
void add_eval(CLI::App& app);
void add_cluster(CLI::App& app);
void add_inspect(CLI::App& app);
void add_serve(CLI::App& app);
void add_repair(CLI::App& app);
void add_collections(CLI::App& app);  // `collections`
void add_snapshot(CLI::App& app);     // `snapshot`
void add_ingest(CLI::App& app);

// A precision-recall plot (SVG) of several curves: one (label, recall[], precision[]) each.
struct PlotCurve {
  std::string label;
  std::vector<double> recall, precision;
};
void write_pr_svg(const std::string& path, const std::string& title,
                  const std::vector<PlotCurve>& curves);

}  // namespace imsat::cli
