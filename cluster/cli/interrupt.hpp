// Ctrl-C during a long operation (import, export, flatten, resize, rollback, rm): the first
// SIGINT/SIGTERM asks the operation to stop at its next chunk (its progress callback returns
// false, the storage service removes its temporaries and fails with ECANCELED: old state kept);
// a second one ends the process at once. Outside an InterruptScope the default action applies
// (short operations such as clone are crash-safe in librbd, or atomic renames).
#pragma once

namespace hcnode::cli {

class InterruptScope {
 public:
  InterruptScope();   // installs the handlers
  ~InterruptScope();  // restores the previous ones
  InterruptScope(const InterruptScope&) = delete;
  InterruptScope& operator=(const InterruptScope&) = delete;

  // True once SIGINT or SIGTERM arrived inside the scope.
  static bool interrupted();
};

}  // namespace hcnode::cli
