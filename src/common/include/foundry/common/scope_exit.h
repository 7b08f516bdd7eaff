// Cleanup on scope exit, and an undo list for multi-step operations that must
// leave nothing half-made behind when a later step fails.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace foundry {

template <typename F>
class ScopeExit {
 public:
  explicit ScopeExit(F f) : f_(std::move(f)) {}
  ScopeExit(const ScopeExit&) = delete;
  ScopeExit& operator=(const ScopeExit&) = delete;
  ~ScopeExit() {
    if (armed_) f_();
  }
  void dismiss() { armed_ = false; }

 private:
  F f_;
  bool armed_ = true;
};

// Steps register how to undo themselves as they succeed. If the list is not
// committed, the destructor runs the undo actions newest first. Undo actions
// must not throw; failures in them are reported through on_failure.
class UndoList {
 public:
  using Action = std::function<void()>;
  UndoList() = default;
  UndoList(const UndoList&) = delete;
  UndoList& operator=(const UndoList&) = delete;
  ~UndoList() { rollback(); }

  void push(std::string what, Action undo) { actions_.emplace_back(std::move(what), std::move(undo)); }
  void commit() { actions_.clear(); }
  // Runs all pending undo actions newest first; returns what was undone.
  std::vector<std::string> rollback() {
    std::vector<std::string> done;
    while (!actions_.empty()) {
      auto [what, act] = std::move(actions_.back());
      actions_.pop_back();
      act();
      done.push_back(std::move(what));
    }
    return done;
  }
  size_t size() const { return actions_.size(); }

 private:
  std::vector<std::pair<std::string, Action>> actions_;
};

}  // namespace foundry
