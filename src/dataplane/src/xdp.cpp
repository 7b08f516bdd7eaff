#include "foundry/dataplane/xdp.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <net/if.h>

#include <cerrno>
#include <cstring>

#include "foundry/common/log.h"
#include "foundry/common/unique_fd.h"
#include "libbpf_log.h"

namespace foundry::dataplane {

namespace {

__u32 mode_flag(XdpMode m) {
  switch (m) {
    case XdpMode::Native: return XDP_FLAGS_DRV_MODE;
    case XdpMode::Generic: return XDP_FLAGS_SKB_MODE;
    case XdpMode::Auto: return 0;
    case XdpMode::Tc: return 0;
  }
  return 0;
}

std::string ifname_of(uint32_t ifindex) {
  char buf[IF_NAMESIZE] = {};
  if (::if_indextoname(ifindex, buf)) return buf;
  return "ifindex " + std::to_string(ifindex);
}

Result<std::string> prog_name_by_id(uint32_t id) {
  int fd = bpf_prog_get_fd_by_id(id);
  if (fd < 0)
    return fail(Error(ErrorKind::Operation, fmt::format("open XDP program id {}", id)).with_errno(-fd));
  UniqueFd owned(fd);
  struct bpf_prog_info info {};
  __u32 len = sizeof(info);
  if (int err = bpf_obj_get_info_by_fd(fd, &info, &len))
    return fail(Error(ErrorKind::Operation, fmt::format("read XDP program id {}", id)).with_errno(-err));
  return std::string(info.name);
}

}  // namespace

std::string_view to_string(XdpMode m) {
  switch (m) {
    case XdpMode::Native: return "native";
    case XdpMode::Generic: return "generic";
    case XdpMode::Auto: return "auto";
    case XdpMode::Tc: return "tc";
  }
  return "?";
}

std::optional<XdpMode> parse_xdp_mode(std::string_view s) {
  if (s == "native" || s == "drv") return XdpMode::Native;
  if (s == "generic" || s == "skb") return XdpMode::Generic;
  if (s == "auto") return XdpMode::Auto;
  if (s == "tc") return XdpMode::Tc;
  return std::nullopt;
}

bool is_foundry_program(const std::string& prog_name) { return prog_name.rfind("foundry_", 0) == 0; }

Result<std::optional<XdpAttachment>> xdp_query(uint32_t ifindex) {
  detail::install_libbpf_logger();
  LIBBPF_OPTS(bpf_xdp_query_opts, q);
  if (int err = bpf_xdp_query(static_cast<int>(ifindex), 0, &q))
    return fail(Error(ErrorKind::Operation, fmt::format("query XDP program on {}", ifname_of(ifindex)))
                    .with_errno(-err));
  XdpAttachment a;
  if (q.attach_mode == XDP_ATTACHED_DRV || q.attach_mode == XDP_ATTACHED_HW) {
    a.prog_id = q.drv_prog_id;
    a.mode = XdpMode::Native;
  } else if (q.attach_mode == XDP_ATTACHED_SKB) {
    a.prog_id = q.skb_prog_id;
    a.mode = XdpMode::Generic;
  } else if (q.attach_mode == XDP_ATTACHED_MULTI) {
    // Both a driver and a generic program: report the driver one, it runs first.
    a.prog_id = q.drv_prog_id ? q.drv_prog_id : q.skb_prog_id;
    a.mode = q.drv_prog_id ? XdpMode::Native : XdpMode::Generic;
  } else {
    return std::optional<XdpAttachment>{};
  }
  a.prog_name = FOUNDRY_TRY(prog_name_by_id(a.prog_id));
  return std::optional<XdpAttachment>{a};
}

Result<XdpMode> xdp_attach(uint32_t ifindex, int prog_fd, XdpMode mode) {
  detail::LibbpfLogCapture log;
  std::string name = ifname_of(ifindex);
  auto ctx = [&] { return fmt::format("attach XDP program to {}", name); };
  if (mode == XdpMode::Tc)
    return fail(ErrorKind::Validation, "{}: mode tc is not an XDP mode (use tc_attach)", ctx());
  auto current = FOUNDRY_TRY_CTX(xdp_query(ifindex), "{}", ctx());
  if (current && !is_foundry_program(current->prog_name))
    return fail(Error(ErrorKind::Operation, fmt::format("{}: it already runs XDP program '{}' (id {}, {})", ctx(),
                                                        current->prog_name, current->prog_id,
                                                        to_string(current->mode)))
                    .with_hint(fmt::format("detach it first: ip link set dev {} xdp off", name)));

  auto attempt = [&](XdpMode m) -> int {
    __u32 flags = mode_flag(m);
    LIBBPF_OPTS(bpf_xdp_attach_opts, opts);
    UniqueFd old;
    if (current && current->mode == m) {
      // Swap in place: the kernel checks old_prog_fd is still the attached
      // program, so a concurrent change fails instead of being overwritten.
      old.reset(bpf_prog_get_fd_by_id(current->prog_id));
      if (old.valid()) {
        flags |= XDP_FLAGS_REPLACE;
        opts.old_prog_fd = old.get();
      }
    } else if (current) {
      // A Foundry program in the other mode: the kernel refuses a second
      // mode while one is attached, so take it off first.
      (void)bpf_xdp_detach(static_cast<int>(ifindex), mode_flag(current->mode), nullptr);
    } else {
      flags |= XDP_FLAGS_UPDATE_IF_NOEXIST;
    }
    return bpf_xdp_attach(static_cast<int>(ifindex), prog_fd, flags, &opts);
  };

  if (mode == XdpMode::Auto) {
    int err = attempt(XdpMode::Native);
    if (err == 0) return XdpMode::Native;
    spdlog::debug("dataplane: native XDP on {} failed ({}), trying generic", name, std::strerror(-err));
    err = attempt(XdpMode::Generic);
    if (err == 0) return XdpMode::Generic;
    return fail(Error(ErrorKind::Operation, ctx()).with_errno(-err).with_detail(log.text()));
  }
  int err = attempt(mode);
  if (err == 0) return mode;
  Error e = Error(ErrorKind::Operation, fmt::format("{} in {} mode", ctx(), to_string(mode)))
                .with_errno(-err)
                .with_detail(log.text());
  if (mode == XdpMode::Native && (-err == EOPNOTSUPP || -err == EINVAL))
    e.with_hint("the driver may lack native XDP; use generic mode");
  return fail(std::move(e));
}

Status xdp_detach(uint32_t ifindex) {
  std::string name = ifname_of(ifindex);
  auto current = FOUNDRY_TRY_CTX(xdp_query(ifindex), "detach XDP program from {}", name);
  if (!current) return ok();
  if (!is_foundry_program(current->prog_name))
    return fail(Error(ErrorKind::Operation, fmt::format("detach XDP program from {}: '{}' is not Foundry's", name,
                                                        current->prog_name))
                    .with_hint(fmt::format("leave it, or remove it yourself: ip link set dev {} xdp off", name)));
  LIBBPF_OPTS(bpf_xdp_attach_opts, opts);
  UniqueFd old(bpf_prog_get_fd_by_id(current->prog_id));
  __u32 flags = mode_flag(current->mode);
  if (old.valid()) {
    flags |= XDP_FLAGS_REPLACE;
    opts.old_prog_fd = old.get();
  }
  if (int err = bpf_xdp_detach(static_cast<int>(ifindex), flags, &opts))
    return fail(Error(ErrorKind::Operation, fmt::format("detach XDP program from {}", name)).with_errno(-err));
  return ok();
}

}  // namespace foundry::dataplane
