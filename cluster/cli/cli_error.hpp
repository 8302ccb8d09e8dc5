// How hcctl fails: every error ends the process with ONE line on stderr, "hcctl: <reason>",
// and an exit status that tells a script what went wrong:
//   2  usage: unknown command or option, missing or malformed argument (nothing was attempted)
//   1  operation: the request was valid but failed (no such image, image busy, cluster down...)
//   130  interrupted (Ctrl-C, SIGTERM) during a cancellable operation: the old state is kept
// Commands throw these; main() is the only place that prints them.
#pragma once

#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "base/result.hpp"

namespace hcnode::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitInterrupted = 130;  // Ctrl-C / SIGTERM cancelled a long operation

class CliError : public std::runtime_error {
 public:
  CliError(int exit_status, const std::string& reason)
      : std::runtime_error(reason), exit_status_(exit_status) {}
  int exit_status() const { return exit_status_; }

 private:
  int exit_status_;
};

// A malformed command line (the message says which part and where to read more).
class UsageError : public CliError {
 public:
  explicit UsageError(const std::string& reason) : CliError(kExitUsage, reason) {}
};

// A valid request that failed.
class OperationError : public CliError {
 public:
  explicit OperationError(const std::string& reason) : CliError(kExitFailure, reason) {}
};

// Unwraps a Result or throws OperationError with the error's one-line message. Names and sizes
// are checked by the commands before they call the client (UsageError, exit 2), so whatever
// the storage layer still refuses is an operation failure (exit 1); ECANCELED (Ctrl-C) is
// kExitInterrupted.
template <typename T>
T value_or_throw(Result<T> result) {
  if (!result) {
    const Error& e = result.error();
    if (e.code() == ECANCELED) {
      throw CliError(kExitInterrupted, "interrupted: " + e.context());
    }
    throw OperationError(e.message());
  }
  if constexpr (!std::is_void_v<T>) {
    return std::move(result).value();
  }
}

}  // namespace hcnode::cli
