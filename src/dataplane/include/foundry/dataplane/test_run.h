// Runs an XDP program on a byte buffer with BPF_PROG_TEST_RUN: the program
// sees the frame as if it arrived on ingress_ifindex, and we get its verdict
// and the frame as it left the program (after any header changes). Nothing is
// transmitted: an XDP_REDIRECT verdict is reported, not carried out, unless
// live_frames is set.
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <vector>

#include "foundry/common/error.h"

namespace foundry::dataplane {

struct XdpRunOptions {
  // Must name an interface in the calling thread's network namespace; the
  // kernel looks it up to fill in ctx->ingress_ifindex. 0 = loopback.
  uint32_t ingress_ifindex = 0;
  uint32_t rx_queue_index = 0;
  uint32_t repeat = 1;  // > 1 for timing; the output is that of the last run
  // BPF_F_TEST_XDP_LIVE_FRAMES: each repetition gets a fresh copy of the
  // frame and its verdict is carried out (a redirect really transmits).
  // The kernel then reports neither the verdict nor the output frame.
  bool live_frames = false;
};

struct XdpRunResult {
  uint32_t verdict = 0;
  std::vector<uint8_t> frame;  // data as the program left it
  std::chrono::nanoseconds duration{0};  // mean per run, as the kernel measured it
};

Result<XdpRunResult> run_xdp(int prog_fd, std::span<const uint8_t> frame, const XdpRunOptions& opts = {});

// The same for a TC (SCHED_CLS) program, as if frame arrived on ifindex
// (clsact ingress). verdict is the TC action (TC_ACT_OK 0, TC_ACT_SHOT 2,
// TC_ACT_REDIRECT 7). bpf_redirect is reported, not carried out;
// bpf_clone_redirect does transmit. Frames shorter than 14 bytes: EINVAL.
struct TcRunOptions {
  uint32_t ifindex = 0;  // must name an interface in the calling thread's namespace; 0 = loopback
  uint32_t repeat = 1;
};

Result<XdpRunResult> run_tc(int prog_fd, std::span<const uint8_t> frame, const TcRunOptions& opts = {});

}  // namespace foundry::dataplane
