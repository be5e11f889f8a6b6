// Errors are values at module boundaries: a Status (ok or a message) and Expected<T>.
#pragma once
#include <string>
#include <utility>
#include <variant>

namespace octet {

class Status {
 public:
  Status() = default;
  static Status Ok() { return Status(); }
  static Status Error(std::string msg) { return Status(std::move(msg), true); }
  bool ok() const { return !failed_; }
  explicit operator bool() const { return ok(); }
  const std::string& message() const { return msg_; }

 private:
  Status(std::string m, bool f) : msg_(std::move(m)), failed_(f) {}
  std::string msg_;
  bool failed_ = false;
};

template <class T>
class Expected {
 public:
  Expected(T v) : v_(std::move(v)) {}                       // NOLINT: implicit by design
  Expected(Status s) : v_(std::move(s)) {}                  // NOLINT: must be an error
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<1>(v_);
  }
  const std::string& error() const { return status().message(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace octet

#define OCTET_CONCAT_(a, b) a##b
#define OCTET_CONCAT(a, b) OCTET_CONCAT_(a, b)
// Propagate a failing Status.
#define OCTET_RETURN_IF_ERROR(expr)               \
  do {                                            \
    ::octet::Status _st = (expr);                 \
    if (!_st.ok()) return _st;                    \
  } while (0)
// lhs = value of an Expected, or return its error.
#define OCTET_ASSIGN_OR_RETURN(lhs, expr) \
  OCTET_ASSIGN_OR_RETURN_IMPL(OCTET_CONCAT(_exp_, __LINE__), lhs, expr)
#define OCTET_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                \
  if (!tmp.ok()) return tmp.status();               \
  lhs = std::move(tmp).value()
