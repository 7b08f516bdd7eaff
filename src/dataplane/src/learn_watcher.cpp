#include "foundry/dataplane/learn_watcher.h"

#include <bpf/libbpf.h>

#include <cerrno>
#include <cstring>

#include "foundry/common/log.h"
#include "foundry/dataplane/forwarder.h"
#include "libbpf_log.h"

namespace foundry::dataplane {

Result<std::unique_ptr<LearnWatcher>> LearnWatcher::create(Forwarder& fw, Callback cb) {
  detail::LibbpfLogCapture log;
  std::unique_ptr<LearnWatcher> w(new LearnWatcher());
  w->cb_ = std::move(cb);
  w->rb_ = ring_buffer__new(fw.learn_events_fd(), &LearnWatcher::on_record, w.get(), nullptr);
  if (!w->rb_)
    return fail(Error(ErrorKind::Operation, "watch learned MACs: open the learn_events ring buffer")
                    .with_errno(errno)
                    .with_detail(log.text()));
  return w;
}

LearnWatcher::~LearnWatcher() {
  stop();
  if (rb_) ring_buffer__free(rb_);
}

int LearnWatcher::on_record(void* ctx, void* data, size_t size) {
  fdp_learn_event ev{};
  if (size < sizeof(ev)) return 0;
  std::memcpy(&ev, data, sizeof(ev));
  LearnEvent out;
  out.vni = ev.vni;
  std::memcpy(out.mac.bytes.data(), ev.mac, 6);
  out.ifindex = ev.ifindex;
  out.moved = ev.kind == FDP_LEARN_MOVE;
  static_cast<LearnWatcher*>(ctx)->cb_(out);
  return 0;
}

Result<int> LearnWatcher::poll(std::chrono::milliseconds timeout) {
  int n = ring_buffer__poll(rb_, static_cast<int>(timeout.count()));
  if (n < 0 && n != -EINTR)
    return fail(Error(ErrorKind::Operation, "poll the learn_events ring buffer").with_errno(-n));
  return n < 0 ? 0 : n;
}

void LearnWatcher::start() {
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] {
    while (!stop_.load()) {
      auto r = poll(std::chrono::milliseconds(100));
      if (!r) spdlog::debug("dataplane: learn watcher: {}", r.error().to_string());
    }
  });
}

void LearnWatcher::stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

}  // namespace foundry::dataplane
