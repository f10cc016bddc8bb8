// Helpers shared by the subcommands.
#include "cli.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <set>

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

// ---------------------------------------------------------------------------------------------
// Settings: command line, then IMSAT_* environment variables, then the --config file.

namespace {

constexpr const char* kConfigGroup = "Settings";

// The long name of an option without dashes ("max-body-bytes"), or "" when it has none.
std::string long_name(const CLI::Option* opt) {
  const std::vector<std::string>& names = opt->get_lnames();
  return names.empty() ? std::string() : names.front();
}

std::string env_name(const std::string& name) {
  std::string out = "IMSAT_";
  for (char c : name) {
    out += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return out;
}

bool is_flag(const CLI::Option* opt) { return opt->get_items_expected_max() == 0; }

bool takes_settings(const CLI::App* cmd) {
  return cmd->get_option_no_throw("--config") != nullptr &&
         cmd->get_option_no_throw("--config")->get_group() == kConfigGroup;
}

// The subcommands whose options are also read from IMSAT_* variables.
std::set<const CLI::App*>& environment_commands() {
  static std::set<const CLI::App*> commands;
  return commands;
}

bool reads_environment(const CLI::App* cmd) { return environment_commands().count(cmd) > 0; }

// The option names the command line gives ("port" for --port 8080 and --port=8080).
std::set<std::string> given_names(const std::vector<std::string>& args) {
  std::set<std::string> out;
  for (const std::string& a : args) {
    if (a.size() > 2 && a.compare(0, 2, "--") == 0) out.insert(a.substr(2, a.find('=') - 2));
  }
  return out;
}

void append_setting(const CLI::Option* opt, const std::vector<std::string>& values,
                    std::vector<std::string>* args) {
  const std::string flag = "--" + long_name(opt);
  if (is_flag(opt)) {
    const std::string v = values.empty() ? "true" : values.front();
    if (v == "true" || v == "1") args->push_back(flag);
    return;
  }
  args->push_back(flag);
  for (const std::string& v : values) args->push_back(v);
}

}  // namespace

void add_config_options(CLI::App* cmd, bool environment) {
  std::string help =
      "Read options from this TOML file (each by its long name, e.g. port = 8080, at the top "
      "level or under [" +
      cmd->get_name() + "])";
  if (environment) {
    help +=
        "; IMSAT_<OPTION> environment variables (IMSAT_PORT, IMSAT_MAX_BODY_BYTES, ...) "
        "override it, and the command line overrides both";
  } else {
    help += "; the command line overrides it";
  }
  if (environment) environment_commands().insert(cmd);
  cmd->add_option("--config")->description(help)->type_name("FILE")->group(kConfigGroup);
  cmd->add_flag("--print-config",
                "Print the merged settings (file, environment, command line) as TOML, tokens "
                "masked, and exit")
      ->group(kConfigGroup);
}

std::vector<std::string> with_settings(CLI::App& app, int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  // The subcommand: the first argument that names one.
  size_t at = 0;
  CLI::App* cmd = nullptr;
  for (; at < args.size() && cmd == nullptr; ++at) {
    for (CLI::App* sub : app.get_subcommands({})) {
      if (sub->get_name() == args[at]) cmd = sub;
    }
  }
  if (cmd == nullptr || !takes_settings(cmd)) return args;
  const std::vector<std::string> own(args.begin() + static_cast<std::ptrdiff_t>(at), args.end());
  const std::set<std::string> given = given_names(own);
  std::vector<std::string> added;
  std::set<std::string> from_environment;
  if (reads_environment(cmd)) {
    for (const CLI::Option* opt : cmd->get_options()) {
      const std::string name = long_name(opt);
      if (name.empty() || name == "config" || name == "print-config" || name == "help" ||
          given.count(name)) {
        continue;
      }
      const char* value = std::getenv(env_name(name).c_str());
      if (value == nullptr || *value == '\0') continue;
      append_setting(opt, {value}, &added);
      from_environment.insert(name);
    }
  }
  std::string file;
  for (size_t i = 0; i < own.size(); ++i) {
    if (own[i] == "--config" && i + 1 < own.size()) file = own[i + 1];
    if (own[i].rfind("--config=", 0) == 0) file = own[i].substr(9);
  }
  if (!file.empty()) {
    std::vector<CLI::ConfigItem> items;
    try {
      items = CLI::ConfigTOML().from_file(file);
    } catch (const CLI::Error& e) {
      throw UsageError(file + ": cannot read the settings: " + e.what());
    }
    for (const CLI::ConfigItem& item : items) {
      if (item.name == "++" || item.name == "--") continue;  // CLI11's section markers
      const bool ours =
          item.parents.empty() || (item.parents.size() == 1 && item.parents[0] == cmd->get_name());
      std::string name = item.name;
      std::replace(name.begin(), name.end(), '_', '-');
      const CLI::Option* opt = ours ? cmd->get_option_no_throw("--" + name) : nullptr;
      if (opt == nullptr || name == "config" || name == "print-config" || name == "help") {
        throw UsageError(file + ": '" + item.fullname() + "' is not an option of imsat " +
                         cmd->get_name());
      }
      if (given.count(name) || from_environment.count(name)) continue;
      append_setting(opt, item.inputs, &added);
    }
  }
  args.insert(args.begin() + static_cast<std::ptrdiff_t>(at), added.begin(), added.end());
  return args;
}

namespace {

// The merged settings as TOML, token options masked.
std::string merged_settings(const CLI::App* cmd) {
  std::string out = "[" + cmd->get_name() + "]\n";
  for (const CLI::Option* opt : cmd->get_options()) {
    const std::string name = long_name(opt);
    if (name.empty() || opt->get_group() == kConfigGroup || name == "help") continue;
    std::string value;
    if (is_flag(opt)) {
      value = opt->count() > 0 ? "true" : "false";
    } else {
      std::vector<std::string> values = opt->results();
      if (values.empty() && !opt->get_default_str().empty()) values = {opt->get_default_str()};
      if (values.empty()) continue;  // unset, no default
      const bool secret = name.find("token") != std::string::npos;
      const auto quoted = [&](const std::string& v) {
        if (secret) return std::string("\"***\"");
        char* end = nullptr;
        std::strtod(v.c_str(), &end);
        if (!v.empty() && end == v.c_str() + v.size() && v.find_first_of("xXnN") == v.npos) {
          return v;  // a number (not hex, inf or nan)
        }
        std::string q = "\"";
        for (char c : v) q += (c == '"' || c == '\\') ? std::string("\\") + c : std::string(1, c);
        return q + "\"";
      };
      if (values.size() == 1) {
        value = quoted(values[0]);
      } else {
        value = "[";
        for (size_t i = 0; i < values.size(); ++i) value += (i ? ", " : "") + quoted(values[i]);
        value += "]";
      }
    }
    out += name;
    std::replace(out.end() - static_cast<std::ptrdiff_t>(name.size()), out.end(), '-', '_');
    out += " = " + value + "\n";
  }
  return out;
}

}  // namespace

bool print_config_if_asked(const CLI::App* cmd) {
  if (cmd->count("--print-config") == 0) return false;
  std::fputs(merged_settings(cmd).c_str(), stdout);
  return true;
}

}  // namespace imsat::cli
