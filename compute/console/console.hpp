// Console: where the guest's serial output goes, and where its input comes from.
//
// Targets (the --serial flag):
//   stdout        output to the VMM's stdout
//   file:PATH     output appended to PATH
//   unix:PATH     a listening socket; every attached client gets the output (starting with the
//                 last kHistoryBytes, so a late client sees the boot), and what clients type
//                 goes to the guest's UART
//   none          output only kept in the history buffer
// Every target keeps the history, which `describe`/tests can read.
//
// Thread-safety: write() is called on vCPU threads (the UART's sink); clients are served by the
// "console" thread (unix target only). A slow client never blocks a vCPU: writes to clients are
// non-blocking and a client whose socket is full loses that output.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "base/event_loop.hpp"
#include "base/fd.hpp"
#include "base/result.hpp"

namespace hcnode::compute {

class Console {
 public:
  static constexpr size_t kHistoryBytes = 64 * 1024;
  using InputHandler = std::function<void(std::span<const uint8_t>)>;

  // Validates and opens the target (creates the socket / opens the file).
  static Result<std::unique_ptr<Console>> create(const std::string& target);
  ~Console();

  // Starts the console thread (unix target); input goes to handler.
  Status start(InputHandler handler);
  void stop();

  void write(std::span<const uint8_t> bytes);
  // The last up to kHistoryBytes of output.
  std::string history() const;
  const std::string& target() const { return target_; }
  size_t clients() const;

 private:
  Console(std::string target, Fd out, Fd listener, std::string socket_path);
  void on_accept();
  void on_client(int fd, uint32_t events);

  std::string target_;
  Fd out_;       // stdout/file target (not owned for stdout: dup'ed)
  Fd listener_;  // unix target
  std::string socket_path_;
  InputHandler input_;

  mutable std::mutex mu_;
  std::string history_;            // guarded by mu_ (ring as a bounded string)
  std::vector<Fd> clients_;        // guarded by mu_

  std::unique_ptr<EventLoop> loop_;
  std::jthread thread_;
};

}  // namespace hcnode::compute
