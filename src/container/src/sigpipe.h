// Internal: keeps SIGPIPE from killing the process while it feeds a child's
// stdin (hooks, CNI plugins) that may exit without reading it.
#pragma once

#include <pthread.h>
#include <signal.h>
#include <time.h>

namespace foundry::container::detail {

// SIGPIPE is blocked for the calling thread while the guard lives, and one
// raised meanwhile is consumed (unless it was already pending before).
class SigpipeGuard {
 public:
  SigpipeGuard() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    sigset_t pending;
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    ::pthread_sigmask(SIG_BLOCK, &set, &old_);
  }
  ~SigpipeGuard() {
    if (!was_pending_) {
      sigset_t set;
      sigemptyset(&set);
      sigaddset(&set, SIGPIPE);
      timespec zero{0, 0};
      while (::sigtimedwait(&set, nullptr, &zero) == SIGPIPE) {
      }
    }
    ::pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  SigpipeGuard(const SigpipeGuard&) = delete;
  SigpipeGuard& operator=(const SigpipeGuard&) = delete;

 private:
  sigset_t old_;
  bool was_pending_ = false;
};

}  // namespace foundry::container::detail
