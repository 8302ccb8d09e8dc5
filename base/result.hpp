// Result<T>: the error type at every layer boundary of hcnode.
//
// An Error carries an errno-style code (positive, e.g. EIO) and a context string that says what
// failed ("KVM_CREATE_VM", "rbd_open rbd/vm-1"). Conversion from errno happens exactly once, at
// the call site of the failing system or library call (from_errno / from_negative_errno), so
// every caller above sees the same type. Data-plane code returns Result; exceptions are for
// the control plane and CLI only.
#pragma once

#include <cerrno>
#include <expected>
#include <string>
#include <string_view>
#include <utility>

namespace hcnode {

class Error {
 public:
  Error(int code, std::string context) : code_(code), context_(std::move(context)) {}

  // errno-style positive code (EIO, ENOENT, ...). Never 0 for a real error.
  int code() const { return code_; }
  const std::string& context() const { return context_; }

  // "context: strerror(code)" — what an operator reads in a log line or CLI message.
  std::string message() const;

  // Adds an outer context: Error(ENOENT,"open x").wrap("load kernel") -> "load kernel: open x".
  Error wrap(std::string_view outer) const&;

 private:
  int code_;
  std::string context_;
};

template <typename T>
using Result = std::expected<T, Error>;
using Status = Result<void>;

// Builds an Error from the current errno. Call immediately after the failing call.
Error from_errno(std::string context);
// Builds an Error from a negative-errno return value (librados, librbd, io_uring CQEs).
Error from_negative_errno(int rc, std::string context);
// An error with an explicit code, for checks that fail without a system call behind them.
inline Error make_error(int code, std::string context) { return Error(code, std::move(context)); }

inline std::unexpected<Error> fail(Error e) { return std::unexpected<Error>(std::move(e)); }
inline std::unexpected<Error> fail(int code, std::string context) {
  return std::unexpected<Error>(Error(code, std::move(context)));
}

// Adds an outer context to an error result (g++ 12's std::expected has no transform_error).
template <typename T>
Result<T> with_context(Result<T> result, std::string_view outer) {
  if (!result) {
    return std::unexpected<Error>(result.error().wrap(outer));
  }
  return result;
}

}  // namespace hcnode

// Propagates an error from an expression returning Result<T>; evaluates to the value otherwise.
// (GNU statement expression: supported by g++ and clang, which are the project's compilers.)
#define HCN_TRY(expr)                                          \
  ({                                                           \
    auto hcn_try_result_ = (expr);                             \
    if (!hcn_try_result_) {                                    \
      return ::std::unexpected(std::move(hcn_try_result_).error()); \
    }                                                          \
    std::move(hcn_try_result_).value();                        \
  })

// Same, for Result<void>/Status where there is no value.
#define HCN_TRY_STATUS(expr)                                   \
  do {                                                         \
    auto hcn_try_status_ = (expr);                             \
    if (!hcn_try_status_) {                                    \
      return ::std::unexpected(std::move(hcn_try_status_).error()); \
    }                                                          \
  } while (0)
