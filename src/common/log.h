// imsat::log — the server's log lines (spdlog, to stderr): a level, an event name and fields, as
// text ("2026-12-05T01:35:00.123Z INFO access method=GET status=200 ...") or as one JSON object per
// line ({"time": ..., "level": "info", "event": "access", "method": "GET", ...}). Fields are never
// tokens or request bodies: callers pass only what may be shown.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "common/status.h"

namespace imsat::log {

enum class Format { kText, kJson };
enum class Level { kDebug, kInfo, kWarn, kError, kOff };

// Where lines go and which: stderr, text, info until called. Safe to call once at start-up,
// before other threads log.
void configure(Format format, Level level);
Result<Format> parse_format(const std::string& name);  // text, json
Result<Level> parse_level(const std::string& name);    // debug, info, warn, error, off

// One line: `event` names what happened; `fields` is a JSON object of what goes with it.
void debug(const std::string& event, const nlohmann::json& fields = nlohmann::json::object());
void info(const std::string& event, const nlohmann::json& fields = nlohmann::json::object());
void warn(const std::string& event, const nlohmann::json& fields = nlohmann::json::object());
void error(const std::string& event, const nlohmann::json& fields = nlohmann::json::object());

// The line `event` and `fields` make in `format` at `level` (without the time in text, for
// tests: the time is the line's first field in both formats).
std::string format_line(Format format, Level level, const std::string& event,
                        const nlohmann::json& fields, const std::string& time);

}  // namespace imsat::log
