// Project-wide error handling: Status, Result<T> and IMSAT_CHECK.
//
// Storage and other I/O boundaries return Status or Result<T>. Broken invariants (our own bugs)
// use IMSAT_CHECK, which logs and aborts in every build type.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <variant>

namespace imsat {

class [[nodiscard]] Status {
 public:
  enum class Code {
    kOk,
    kInvalidArgument,
    kNotFound,
    kCorruption,
    kIOError,
    kCancelled,
    kInternal,
    kAlreadyExists,  // a name (collection, snapshot) is taken
    kNoSpace         // the disk is full: writes wait for space, reads go on
  };

  Status() = default;
  static Status ok() { return Status(); }
  static Status invalid_argument(std::string msg) {
    return Status(Code::kInvalidArgument, std::move(msg));
  }
  static Status not_found(std::string msg) { return Status(Code::kNotFound, std::move(msg)); }
  static Status corruption(std::string msg) { return Status(Code::kCorruption, std::move(msg)); }
  static Status io_error(std::string msg) { return Status(Code::kIOError, std::move(msg)); }
  static Status cancelled(std::string msg) { return Status(Code::kCancelled, std::move(msg)); }
  static Status internal(std::string msg) { return Status(Code::kInternal, std::move(msg)); }
  static Status already_exists(std::string msg) {
    return Status(Code::kAlreadyExists, std::move(msg));
  }
  static Status no_space(std::string msg) { return Status(Code::kNoSpace, std::move(msg)); }

  bool is_ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }

  // "InvalidArgument: <message>", or "OK".
  std::string to_string() const {
    return is_ok() ? std::string("OK") : std::string(code_name(code_)) + ": " + message_;
  }

  // The same error with `prefix` before its message (context such as a file or collection name).
  Status prefixed(const std::string& prefix) const {
    return is_ok() ? *this : Status(code_, prefix + message_);
  }

  // Explicitly drops a status; write the reason in a comment beside the call.
  void ignore() const {}

  static const char* code_name(Code code) {
    switch (code) {
      case Code::kOk:
        return "OK";
      case Code::kInvalidArgument:
        return "InvalidArgument";
      case Code::kNotFound:
        return "NotFound";
      case Code::kCorruption:
        return "Corruption";
      case Code::kIOError:
        return "IOError";
      case Code::kCancelled:
        return "Cancelled";
      case Code::kInternal:
        return "Internal";
      case Code::kAlreadyExists:
        return "AlreadyExists";
      case Code::kNoSpace:
        return "NoSpace";
    }
    return "Unknown";
  }

 private:
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  Code code_ = Code::kOk;
  std::string message_;
};

// A value or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : data_(std::move(value)) {}        // NOLINT(google-explicit-constructor)
  Result(Status status) : data_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    if (std::get<Status>(data_).is_ok()) {
      data_ = Status::internal("Result constructed from an OK status without a value");
    }
  }

  bool is_ok() const { return std::holds_alternative<T>(data_); }
  Status status() const { return is_ok() ? Status::ok() : std::get<Status>(data_); }

  // Precondition: is_ok().
  T& value() & { return std::get<T>(data_); }
  const T& value() const& { return std::get<T>(data_); }
  T&& value() && { return std::get<T>(std::move(data_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> data_;
};

namespace detail {
[[noreturn]] inline void check_failed(const char* cond, const char* file, int line,
                                      const std::string& msg) {
  std::fprintf(stderr, "IMSAT_CHECK failed: %s at %s:%d: %s\n", cond, file, line, msg.c_str());
  std::fflush(stderr);
  std::abort();
}
}  // namespace detail

}  // namespace imsat

#define IMSAT_CHECK(cond, msg)                                                    \
  do {                                                                            \
    if (!(cond)) ::imsat::detail::check_failed(#cond, __FILE__, __LINE__, (msg)); \
  } while (0)

// Returns the status from the enclosing function if it is not OK.
#define IMSAT_RETURN_IF_ERROR(expr)                   \
  do {                                                \
    ::imsat::Status imsat_status_ = (expr);           \
    if (!imsat_status_.is_ok()) return imsat_status_; \
  } while (0)

#define IMSAT_STATUS_CONCAT_INNER(a, b) a##b
#define IMSAT_STATUS_CONCAT(a, b) IMSAT_STATUS_CONCAT_INNER(a, b)
#define IMSAT_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                \
  if (!tmp.is_ok()) return tmp.status();            \
  lhs = std::move(tmp).value()

// Evaluates `expr` (a Result<T>); returns its status from the enclosing function when it is not
// OK, else moves the value into `lhs`, which may declare a variable:
//   IMSAT_ASSIGN_OR_RETURN(auto model, learn::Model::load(path));
#define IMSAT_ASSIGN_OR_RETURN(lhs, expr) \
  IMSAT_ASSIGN_OR_RETURN_IMPL(IMSAT_STATUS_CONCAT(imsat_result_, __LINE__), lhs, expr)
