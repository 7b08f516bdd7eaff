#include "foundry/dataplane/tc.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <net/if.h>

#include <cerrno>

#include "foundry/common/log.h"
#include "foundry/common/subprocess.h"
#include "foundry/common/unique_fd.h"
#include "foundry/dataplane/xdp.h"
#include "libbpf_log.h"

namespace foundry::dataplane {

namespace {

std::string ifname_of(uint32_t ifindex) {
  char buf[IF_NAMESIZE] = {};
  if (::if_indextoname(ifindex, buf)) return buf;
  return "ifindex " + std::to_string(ifindex);
}

bpf_tc_hook ingress_hook(uint32_t ifindex) {
  bpf_tc_hook h{};
  h.sz = sizeof(h);
  h.ifindex = static_cast<int>(ifindex);
  h.attach_point = BPF_TC_INGRESS;
  return h;
}

bpf_tc_opts slot() {
  bpf_tc_opts o{};
  o.sz = sizeof(o);
  o.handle = kTcHandle;
  o.priority = kTcPriority;
  return o;
}

// True when tc(8) lists no filter on either side of the interface's clsact.
// libbpf can query one filter by handle but not list them, so we ask tc;
// without it (or on any doubt) the qdisc is considered in use.
bool clsact_is_empty(const std::string& ifname) {
  if (find_program("tc").empty()) return false;
  for (const char* side : {"ingress", "egress"}) {
    auto r = run({"tc", "filter", "show", "dev", ifname, side});
    if (!r || r->exit_code != 0 || !r->out.empty()) return false;
  }
  return true;
}

}  // namespace

Result<std::optional<TcAttachment>> tc_query(uint32_t ifindex) {
  detail::install_libbpf_logger();
  bpf_tc_hook hook = ingress_hook(ifindex);
  bpf_tc_opts o = slot();
  int err = bpf_tc_query(&hook, &o);
  // No clsact qdisc (EINVAL) or nothing in our slot (ENOENT).
  if (err == -ENOENT || err == -EINVAL) return std::optional<TcAttachment>{};
  if (err)
    return fail(Error(ErrorKind::Operation, fmt::format("query TC ingress filter on {}", ifname_of(ifindex)))
                    .with_errno(-err));
  TcAttachment a;
  a.prog_id = o.prog_id;
  int fd = bpf_prog_get_fd_by_id(o.prog_id);
  if (fd < 0)
    return fail(Error(ErrorKind::Operation, fmt::format("open TC program id {}", o.prog_id)).with_errno(-fd));
  UniqueFd owned(fd);
  struct bpf_prog_info info {};
  __u32 len = sizeof(info);
  if (int e = bpf_obj_get_info_by_fd(fd, &info, &len))
    return fail(Error(ErrorKind::Operation, fmt::format("read TC program id {}", o.prog_id)).with_errno(-e));
  a.prog_name = info.name;
  return std::optional<TcAttachment>{a};
}

Status tc_attach(uint32_t ifindex, int prog_fd) {
  detail::LibbpfLogCapture log;
  std::string name = ifname_of(ifindex);
  auto ctx = [&] { return fmt::format("attach TC program to {} (clsact ingress)", name); };
  auto current = FOUNDRY_TRY_CTX(tc_query(ifindex), "{}", ctx());
  if (current && !is_foundry_program(current->prog_name))
    return fail(Error(ErrorKind::Operation, fmt::format("{}: filter handle {:#x} priority {} already runs '{}' (id {})",
                                                        ctx(), kTcHandle, kTcPriority, current->prog_name,
                                                        current->prog_id))
                    .with_hint(fmt::format("remove it first: tc filter del dev {} ingress pref {} handle {:#x} bpf",
                                           name, kTcPriority, kTcHandle)));
  bpf_tc_hook hook = ingress_hook(ifindex);
  int err = bpf_tc_hook_create(&hook);
  if (err && err != -EEXIST)
    return fail(Error(ErrorKind::Operation, fmt::format("{}: create clsact qdisc", ctx()))
                    .with_errno(-err)
                    .with_detail(log.text())
                    .with_hint("the kernel needs CONFIG_NET_SCH_INGRESS and CONFIG_NET_CLS_BPF"));
  bpf_tc_opts o = slot();
  o.prog_fd = prog_fd;
  o.flags = BPF_TC_F_REPLACE;  // in place: cls_bpf swaps the program under RCU
  if ((err = bpf_tc_attach(&hook, &o)))
    return fail(Error(ErrorKind::Operation, ctx()).with_errno(-err).with_detail(log.text()));
  return ok();
}

Status tc_detach(uint32_t ifindex) {
  std::string name = ifname_of(ifindex);
  auto current = FOUNDRY_TRY_CTX(tc_query(ifindex), "detach TC program from {}", name);
  if (!current) return ok();
  if (!is_foundry_program(current->prog_name))
    return fail(Error(ErrorKind::Operation,
                      fmt::format("detach TC program from {}: '{}' is not Foundry's", name, current->prog_name))
                    .with_hint("leave it, or remove it yourself with tc filter del"));
  bpf_tc_hook hook = ingress_hook(ifindex);
  bpf_tc_opts o = slot();
  if (int err = bpf_tc_detach(&hook, &o); err && err != -ENOENT)
    return fail(Error(ErrorKind::Operation, fmt::format("detach TC program from {}", name)).with_errno(-err));
  // An empty clsact is not free: once one exists the kernel runs its ingress
  // and egress hooks for every skb of the interface (in one pair of bench
  // runs, 60-byte frames in XDP mode on ports that had been in TC mode went
  // from ~1.0x to ~1.5x the kernel path once the qdisc went too). Removed
  // only when no filter is left.
  if (clsact_is_empty(name)) {
    bpf_tc_hook both = ingress_hook(ifindex);
    both.attach_point = static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS);
    if (int err = bpf_tc_hook_destroy(&both); err && err != -ENOENT)
      spdlog::debug("dataplane: could not remove the empty clsact qdisc of {}: {}", name, -err);
  }
  return ok();
}

}  // namespace foundry::dataplane
