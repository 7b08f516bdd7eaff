// Device access on cgroup v2: the unified hierarchy has no devices
// controller; the kernel asks a BPF_PROG_TYPE_CGROUP_DEVICE program
// attached to the task's cgroup instead (on every open and mknod of a device
// node). The program here is generated from the same rule list the v1
// controller gets, with the v1 semantics: rules are looked at from the last
// to the first, the first that matches decides, and no match denies.
//
// Per rule (r2 = device type, r3 = requested access, r4 = major, r5 = minor):
//   if type given:   if r2 != type   goto next
//   if access < rwm: if (r3 & access) != r3 goto next
//   if major given:  if r4 != major  goto next
//   if minor given:  if r5 != minor  goto next
//   r0 = allow; exit
#include <fcntl.h>
#include <linux/bpf.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "foundry/common/unique_fd.h"
#include "foundry/container/cgroup.h"

namespace foundry::container {

namespace {

bpf_insn insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
  bpf_insn i{};
  i.code = code;
  i.dst_reg = dst & 0xf;
  i.src_reg = src & 0xf;
  i.off = off;
  i.imm = imm;
  return i;
}

uint32_t access_bits(const std::string& access) {
  uint32_t bits = 0;
  for (char c : access) {
    if (c == 'r') bits |= BPF_DEVCG_ACC_READ;
    else if (c == 'w') bits |= BPF_DEVCG_ACC_WRITE;
    else if (c == 'm') bits |= BPF_DEVCG_ACC_MKNOD;
  }
  return bits;
}

constexpr uint32_t kAllAccess = BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE | BPF_DEVCG_ACC_MKNOD;

std::vector<bpf_insn> build(const std::vector<DeviceRule>& rules) {
  std::vector<bpf_insn> p;
  // r2 = ctx->access_type & 0xffff (type); r3 = ctx->access_type >> 16 (access)
  p.push_back(insn(BPF_LDX | BPF_W | BPF_MEM, BPF_REG_2, BPF_REG_1, offsetof(bpf_cgroup_dev_ctx, access_type), 0));
  p.push_back(insn(BPF_ALU | BPF_AND | BPF_K, BPF_REG_2, 0, 0, 0xffff));
  p.push_back(insn(BPF_LDX | BPF_W | BPF_MEM, BPF_REG_3, BPF_REG_1, offsetof(bpf_cgroup_dev_ctx, access_type), 0));
  p.push_back(insn(BPF_ALU | BPF_RSH | BPF_K, BPF_REG_3, 0, 0, 16));
  p.push_back(insn(BPF_LDX | BPF_W | BPF_MEM, BPF_REG_4, BPF_REG_1, offsetof(bpf_cgroup_dev_ctx, major), 0));
  p.push_back(insn(BPF_LDX | BPF_W | BPF_MEM, BPF_REG_5, BPF_REG_1, offsetof(bpf_cgroup_dev_ctx, minor), 0));
  for (auto it = rules.rbegin(); it != rules.rend(); ++it) {
    const DeviceRule& r = *it;
    uint32_t acc = access_bits(r.access);
    // Conditional jumps of this block, patched to the block's end.
    std::vector<size_t> to_next;
    auto jump_unless_equal = [&](uint8_t reg, int32_t value) {
      to_next.push_back(p.size());
      p.push_back(insn(BPF_JMP | BPF_JNE | BPF_K, reg, 0, 0, value));
    };
    if (r.type == 'c') jump_unless_equal(BPF_REG_2, BPF_DEVCG_DEV_CHAR);
    else if (r.type == 'b') jump_unless_equal(BPF_REG_2, BPF_DEVCG_DEV_BLOCK);
    if (acc != kAllAccess) {
      // r1 = r3 & acc; if r1 != r3 goto next (every requested bit must be granted)
      p.push_back(insn(BPF_ALU | BPF_MOV | BPF_X, BPF_REG_1, BPF_REG_3, 0, 0));
      p.push_back(insn(BPF_ALU | BPF_AND | BPF_K, BPF_REG_1, 0, 0, static_cast<int32_t>(acc)));
      to_next.push_back(p.size());
      p.push_back(insn(BPF_JMP | BPF_JNE | BPF_X, BPF_REG_1, BPF_REG_3, 0, 0));
    }
    if (r.major >= 0) jump_unless_equal(BPF_REG_4, static_cast<int32_t>(r.major));
    if (r.minor >= 0) jump_unless_equal(BPF_REG_5, static_cast<int32_t>(r.minor));
    p.push_back(insn(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, r.allow ? 1 : 0));
    p.push_back(insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
    // A rule that matches everything ends the program: the verifier
    // rejects code nothing can reach.
    if (to_next.empty()) return p;
    size_t next = p.size();
    for (size_t j : to_next) p[j].off = static_cast<int16_t>(next - j - 1);
  }
  p.push_back(insn(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0));
  p.push_back(insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
  return p;
}

long bpf(int cmd, bpf_attr* attr) { return ::syscall(SYS_bpf, cmd, attr, sizeof *attr); }

}  // namespace

std::vector<DeviceRule> container_device_rules(const std::vector<DeviceRule>& spec_rules) {
  std::vector<DeviceRule> out;
  out.push_back({false, 'a', -1, -1, "rwm"});
  out.insert(out.end(), spec_rules.begin(), spec_rules.end());
  static const DeviceRule defaults[] = {
      {true, 'c', 1, 3, "rwm"},   {true, 'c', 1, 5, "rwm"}, {true, 'c', 1, 7, "rwm"},    // null zero full
      {true, 'c', 1, 8, "rwm"},   {true, 'c', 1, 9, "rwm"}, {true, 'c', 5, 0, "rwm"},    // random urandom tty
      {true, 'c', 5, 1, "rwm"},   {true, 'c', 5, 2, "rwm"}, {true, 'c', 136, -1, "rwm"}, // console ptmx pts
      {true, 'c', 10, 200, "rwm"},                                                         // tun
  };
  out.insert(out.end(), std::begin(defaults), std::end(defaults));
  return out;
}

size_t device_filter_size(const std::vector<DeviceRule>& rules) { return build(rules).size(); }

Status attach_device_filter(const std::string& cgroup_dir, const std::vector<DeviceRule>& rules) {
  std::vector<bpf_insn> prog = build(rules);
  std::string log(16384, '\0');
  bpf_attr load{};
  load.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  load.insns = reinterpret_cast<uint64_t>(prog.data());
  load.insn_cnt = static_cast<uint32_t>(prog.size());
  static const char license[] = "Apache-2.0";
  load.license = reinterpret_cast<uint64_t>(license);
  load.log_buf = reinterpret_cast<uint64_t>(log.data());
  load.log_size = static_cast<uint32_t>(log.size());
  load.log_level = 1;
  std::strncpy(load.prog_name, "foundry_dev", sizeof load.prog_name - 1);
  UniqueFd prog_fd(static_cast<int>(bpf(BPF_PROG_LOAD, &load)));
  if (!prog_fd) {
    Error e = sys_error(ErrorKind::Operation,
                        fmt::format("cannot load the device filter ({} BPF instructions)", prog.size()));
    log.resize(std::strlen(log.c_str()));
    if (!log.empty()) e.with_detail("verifier: " + log);
    return fail(std::move(e).wrap("apply linux.resources.devices").with_hint(
        "cgroup v2 enforces device rules with BPF, which needs CAP_SYS_ADMIN (or CAP_BPF)"));
  }
  UniqueFd cg(::open(cgroup_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!cg) return fail_errno(ErrorKind::Operation, "cannot open cgroup {}", cgroup_dir);
  bpf_attr attach{};
  attach.target_fd = static_cast<uint32_t>(cg.get());
  attach.attach_bpf_fd = static_cast<uint32_t>(prog_fd.get());
  attach.attach_type = BPF_CGROUP_DEVICE;
  // MULTI: programs of parent cgroups (systemd's) keep running too; all
  // must allow.
  attach.attach_flags = BPF_F_ALLOW_MULTI;
  if (bpf(BPF_PROG_ATTACH, &attach) != 0)
    return fail(sys_error(ErrorKind::Operation, fmt::format("cannot attach the device filter to {}", cgroup_dir))
                    .wrap("apply linux.resources.devices"));
  // The attachment holds the program; it goes away with the cgroup.
  return ok();
}

}  // namespace foundry::container
