#include "foundry/dataplane/test_run.h"

#include <bpf/bpf.h>
#include <linux/bpf.h>

#include "foundry/dataplane/types.h"

namespace foundry::dataplane {

Result<XdpRunResult> run_xdp(int prog_fd, std::span<const uint8_t> frame, const XdpRunOptions& opts) {
  // Room for the frame to grow: encapsulation adds FDP_ENCAP_OVERHEAD bytes.
  std::vector<uint8_t> out(frame.size() + 512);
  struct xdp_md ctx {};
  // The kernel checks that data_end matches the input size and that there is
  // no metadata in front of the frame.
  ctx.data_end = static_cast<__u32>(frame.size());
  ctx.ingress_ifindex = opts.ingress_ifindex;
  ctx.rx_queue_index = opts.rx_queue_index;
  LIBBPF_OPTS(bpf_test_run_opts, run);
  run.data_in = frame.data();
  run.data_size_in = static_cast<__u32>(frame.size());
  if (opts.live_frames) {
    run.flags = BPF_F_TEST_XDP_LIVE_FRAMES;  // the kernel refuses data_out here
  } else {
    run.data_out = out.data();
    run.data_size_out = static_cast<__u32>(out.size());
  }
  if (opts.ingress_ifindex != 0 || opts.rx_queue_index != 0) {
    run.ctx_in = &ctx;
    run.ctx_size_in = sizeof(ctx);
  }
  run.repeat = opts.repeat;
  if (int err = bpf_prog_test_run_opts(prog_fd, &run)) {
    Error e(ErrorKind::Operation,
            fmt::format("run XDP program (fd {}) on a {}-byte frame from ifindex {}", prog_fd, frame.size(),
                        opts.ingress_ifindex));
    e.with_errno(-err);
    if (-err == EINVAL && frame.size() < 14)
      e.with_hint("the kernel runs XDP test frames of at least an Ethernet header (14 bytes)");
    return fail(std::move(e));
  }
  out.resize(opts.live_frames ? 0 : run.data_size_out);
  return XdpRunResult{run.retval, std::move(out), std::chrono::nanoseconds(run.duration)};
}

Result<XdpRunResult> run_tc(int prog_fd, std::span<const uint8_t> frame, const TcRunOptions& opts) {
  std::vector<uint8_t> out(frame.size() + 512);
  struct __sk_buff ctx {};
  ctx.ifindex = opts.ifindex;
  LIBBPF_OPTS(bpf_test_run_opts, run);
  run.data_in = frame.data();
  run.data_size_in = static_cast<__u32>(frame.size());
  run.data_out = out.data();
  run.data_size_out = static_cast<__u32>(out.size());
  if (opts.ifindex != 0) {
    run.ctx_in = &ctx;
    run.ctx_size_in = sizeof(ctx);
  }
  run.repeat = opts.repeat;
  if (int err = bpf_prog_test_run_opts(prog_fd, &run)) {
    Error e(ErrorKind::Operation, fmt::format("run TC program (fd {}) on a {}-byte frame from ifindex {}", prog_fd,
                                              frame.size(), opts.ifindex));
    e.with_errno(-err);
    if (-err == EINVAL && frame.size() < 14)
      e.with_hint("the kernel runs TC test frames of at least an Ethernet header (14 bytes)");
    return fail(std::move(e));
  }
  out.resize(run.data_size_out);
  return XdpRunResult{run.retval, std::move(out), std::chrono::nanoseconds(run.duration)};
}

}  // namespace foundry::dataplane
