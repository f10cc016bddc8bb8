// Log lines through spdlog: one stderr logger (thread-safe sink), each line formatted here.
#include "common/log.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>

#include "common/enum_names.h"

namespace imsat::log {
namespace {

std::atomic<Format> g_format{Format::kText};

spdlog::logger& logger() {
  static std::shared_ptr<spdlog::logger> l = [] {
    auto made = std::make_shared<spdlog::logger>("imsat",
                                                 std::make_shared<spdlog::sinks::stderr_sink_mt>());
    made->set_pattern("%v");  // each line is formatted whole by format_line
    made->set_level(spdlog::level::info);
    made->flush_on(spdlog::level::trace);
    return made;
  }();
  return *l;
}

spdlog::level::level_enum to_spdlog(Level level) {
  switch (level) {
    case Level::kDebug:
      return spdlog::level::debug;
    case Level::kInfo:
      return spdlog::level::info;
    case Level::kWarn:
      return spdlog::level::warn;
    case Level::kError:
      return spdlog::level::err;
    case Level::kOff:
      break;
  }
  return spdlog::level::off;
}

constexpr EnumName<Level> kLevelNames[] = {{Level::kDebug, "debug"},
                                           {Level::kInfo, "info"},
                                           {Level::kWarn, "warn"},
                                           {Level::kError, "error"},
                                           {Level::kOff, "off"}};
constexpr EnumName<Format> kFormatNames[] = {{Format::kText, "text"}, {Format::kJson, "json"}};

const char* level_name(Level level) { return name_of(kLevelNames, level); }

// UTC with milliseconds: 2026-12-05T01:35:00.123Z.
std::string now_text() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  const long ms = static_cast<long>(
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buf[40];
  const size_t n = std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof(buf) - n, ".%03ldZ", ms);
  return buf;
}

// A text value: bare when it is a plain word or number, else JSON-quoted (so spaces, quotes and
// control characters cannot forge another field or line).
std::string text_value(const nlohmann::json& v) {
  if (!v.is_string()) return v.dump();
  const std::string& s = v.get_ref<const std::string&>();
  const bool plain =
      !s.empty() && s.find_first_of(" \t\r\n\"=\\") == std::string::npos &&
      std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) >= 0x20; });
  return plain ? s : v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void emit(Level level, const std::string& event, const nlohmann::json& fields) {
  spdlog::logger& l = logger();
  const spdlog::level::level_enum lv = to_spdlog(level);
  if (!l.should_log(lv)) return;
  l.log(lv, format_line(g_format.load(), level, event, fields, now_text()));
}

}  // namespace

void configure(Format format, Level level) {
  g_format.store(format);
  logger().set_level(to_spdlog(level));
}

Result<Format> parse_format(const std::string& name) {
  if (const std::optional<Format> f = value_of(kFormatNames, name)) return *f;
  return Status::invalid_argument("log format must be " + names_of(kFormatNames) + ", got '" +
                                  name + "'");
}

Result<Level> parse_level(const std::string& name) {
  if (const std::optional<Level> l = value_of(kLevelNames, name)) return *l;
  return Status::invalid_argument("log level must be " + names_of(kLevelNames) + ", got '" + name +
                                  "'");
}

std::string format_line(Format format, Level level, const std::string& event,
                        const nlohmann::json& fields, const std::string& time) {
  if (format == Format::kJson) {
    nlohmann::ordered_json line = {{"time", time}, {"level", level_name(level)}, {"event", event}};
    if (fields.is_object()) {
      for (auto it = fields.begin(); it != fields.end(); ++it) line[it.key()] = it.value();
    }
    return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  std::string line = time + " " + level_name(level) + " " + event;
  if (fields.is_object()) {
    for (auto it = fields.begin(); it != fields.end(); ++it) {
      line += " " + it.key() + "=" + text_value(it.value());
    }
  }
  return line;
}

void debug(const std::string& event, const nlohmann::json& fields) {
  emit(Level::kDebug, event, fields);
}
void info(const std::string& event, const nlohmann::json& fields) {
  emit(Level::kInfo, event, fields);
}
void warn(const std::string& event, const nlohmann::json& fields) {
  emit(Level::kWarn, event, fields);
}
void error(const std::string& event, const nlohmann::json& fields) {
  emit(Level::kError, event, fields);
}

}  // namespace imsat::log
