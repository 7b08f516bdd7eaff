// Follows what the forwarder learns: every FDB write the XDP program makes
// (a new MAC, or one that moved port) arrives through the learn_events ring
// buffer and is handed to a callback.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <thread>

#include "foundry/common/error.h"
#include "foundry/dataplane/types.h"

struct ring_buffer;

namespace foundry::dataplane {

class Forwarder;

struct LearnEvent {
  Vni vni = 0;
  MacAddr mac;
  uint32_t ifindex = 0;
  bool moved = false;  // false: newly learned
  bool operator==(const LearnEvent&) const = default;
};

class LearnWatcher {
 public:
  using Callback = std::function<void(const LearnEvent&)>;
  // The callback runs on the polling thread. The forwarder must outlive the
  // watcher.
  static Result<std::unique_ptr<LearnWatcher>> create(Forwarder& fw, Callback cb);
  ~LearnWatcher();
  LearnWatcher(const LearnWatcher&) = delete;
  LearnWatcher& operator=(const LearnWatcher&) = delete;

  // Delivers what is pending, waiting up to timeout; returns how many.
  Result<int> poll(std::chrono::milliseconds timeout);
  void start();  // poll on a background thread
  void stop();

 private:
  LearnWatcher() = default;
  static int on_record(void* ctx, void* data, size_t size);

  ring_buffer* rb_ = nullptr;
  Callback cb_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
};

}  // namespace foundry::dataplane
