#include "foundry/dataplane/forwarder.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>

#include "foundry/common/log.h"
#include "foundry/common/scope_exit.h"
#include "foundry/common/unique_fd.h"
#include "foundry/dataplane/pin.h"
#include "forwarder.skel.h"
#include "libbpf_log.h"

namespace foundry::dataplane {

void Forwarder::SkelDeleter::operator()(::forwarder* s) const { forwarder__destroy(s); }

namespace {

Error libbpf_error(int err, std::string message) {
  return Error(ErrorKind::Operation, std::move(message)).with_errno(err < 0 ? -err : err);
}

bool path_exists(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0;
}

// Whether a pinned map can stand in for the one this build declares. We do
// this instead of letting libbpf reuse pins by path because the kernel adds
// BPF_F_RDONLY_PROG to every devmap it creates, and libbpf's own check then
// sees a flag mismatch and refuses the map (and userspace may not create a
// devmap with that flag to match).
Status check_compatible(const struct bpf_map* m, int fd, const std::string& path) {
  struct bpf_map_info info {};
  __u32 len = sizeof(info);
  if (int err = bpf_obj_get_info_by_fd(fd, &info, &len))
    return fail(libbpf_error(err, fmt::format("read pinned map {}", path)));
  __u32 want_max = bpf_map__max_entries(m);
  if (bpf_map__type(m) == BPF_MAP_TYPE_PERF_EVENT_ARRAY && want_max == 0)
    want_max = static_cast<__u32>(libbpf_num_possible_cpus());  // what libbpf creates it with
  __u32 ignore = BPF_F_RDONLY_PROG;
  std::string diff;
  if (info.type != static_cast<__u32>(bpf_map__type(m))) diff = fmt::format("type {} != {}", info.type, bpf_map__type(m));
  else if (info.key_size != bpf_map__key_size(m)) diff = fmt::format("key size {} != {}", info.key_size, bpf_map__key_size(m));
  else if (info.value_size != bpf_map__value_size(m))
    diff = fmt::format("value size {} != {}", info.value_size, bpf_map__value_size(m));
  else if (info.max_entries != want_max) diff = fmt::format("max entries {} != {}", info.max_entries, want_max);
  else if ((info.map_flags & ~ignore) != (bpf_map__map_flags(m) & ~ignore))
    diff = fmt::format("flags {:#x} != {:#x}", info.map_flags, bpf_map__map_flags(m));
  if (diff.empty()) return ok();
  return fail(Error(ErrorKind::Operation, fmt::format("pinned map '{}' at {} does not match this build: {}",
                                                      bpf_map__name(m), path, diff)));
}

// Adopts every map already pinned in dir; the others get a pin path, so
// libbpf creates and pins them during load. True when anything was adopted.
Result<bool> adopt_pinned_maps(struct bpf_object* obj, const std::string& dir) {
  bool adopted = false;
  struct bpf_map* m;
  bpf_object__for_each_map(m, obj) {
    // Internal maps (.rodata and friends) are not state; there are none
    // today, and pinning them would tie reloads to one build.
    if (bpf_map__is_internal(m)) continue;
    std::string path = dir + "/" + bpf_map__name(m);
    if (!path_exists(path)) {
      if (int err = bpf_map__set_pin_path(m, path.c_str()))
        return fail(libbpf_error(err, fmt::format("set pin path {}", path)));
      continue;
    }
    int fd = bpf_obj_get(path.c_str());
    if (fd < 0) return fail(libbpf_error(fd, fmt::format("open pinned map {}", path)));
    UniqueFd owned(fd);
    FOUNDRY_TRY(check_compatible(m, fd, path));
    if (int err = bpf_map__reuse_fd(m, fd))  // dups fd
      return fail(libbpf_error(err, fmt::format("adopt pinned map {}", path)));
    adopted = true;
  }
  return adopted;
}

}  // namespace

Result<std::unique_ptr<Forwarder>> Forwarder::load(const ForwarderOptions& opts) {
  detail::LibbpfLogCapture log;
  std::unique_ptr<Forwarder> fw(new Forwarder());
  fw->pin_dir_ = opts.pin_dir;

  fw->skel_.reset(forwarder__open());
  if (!fw->skel_)
    return fail(libbpf_error(-errno, "open the embedded XDP forwarder object").with_detail(log.text()));
  ::forwarder* s = fw->skel_.get();

  if (opts.fdb_max_entries == 0)
    return fail(ErrorKind::Validation, "FDB size 0: the forwarding database needs at least one entry");
  if (int err = bpf_map__set_max_entries(s->maps.fdb, opts.fdb_max_entries))
    return fail(libbpf_error(err, "size the fdb map"));

  if (!opts.pin_dir.empty()) {
    FOUNDRY_TRY_CTX(prepare_pin_dir(opts.pin_dir), "load XDP forwarder");
    auto adopted = adopt_pinned_maps(s->obj, opts.pin_dir);
    if (!adopted)
      return fail(std::move(adopted.error())
                      .with_hint(fmt::format("the maps pinned in {} come from another build or size; keep the old "
                                             "size, or remove them (losing the forwarding state) to start empty",
                                             opts.pin_dir))
                      .wrap("load XDP forwarder"));
    fw->reused_ = *adopted;
  }

  if (int err = forwarder__load(s)) {
    Error e = libbpf_error(err, "load XDP forwarder into the kernel").with_detail(log.text());
    if (-err == EPERM || -err == EACCES)
      e.with_hint("loading BPF programs needs root (CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON)");
    else if (fw->reused_)
      e.with_hint(fmt::format("pinned maps in {} may come from an incompatible build or size; "
                              "inspect with bpftool map show, or remove them to start empty",
                              opts.pin_dir));
    else
      e.with_hint("run with --verbose to see the verifier log");
    return fail(std::move(e));
  }

  fw->fdb_ = FdbMap(bpf_map__fd(s->maps.fdb), "fdb");
  fw->ports_ = PortMap(bpf_map__fd(s->maps.ports), "ports");
  fw->neighbors_ = NeighborMap(bpf_map__fd(s->maps.neighbours), "neighbours");
  fw->vnis_ = VniMap(bpf_map__fd(s->maps.vnis), "vnis");
  fw->flood_remotes_ = FloodRemoteMap(bpf_map__fd(s->maps.flood_remote), "flood_remote");
  fw->tx_ports_ = TypedMap<uint32_t, uint32_t>(bpf_map__fd(s->maps.tx_ports), "tx_ports");
  fw->vtep_ = TypedMap<uint32_t, VtepConfig>(bpf_map__fd(s->maps.vtep), "vtep");
  spdlog::debug("dataplane: forwarder loaded (prog fd {}, pin dir '{}', reused maps: {})",
                fw->program_fd(), opts.pin_dir, fw->reused_);
  return fw;
}

Forwarder::~Forwarder() = default;

int Forwarder::program_fd() const { return bpf_program__fd(skel_->progs.foundry_forward); }
int Forwarder::pass_program_fd() const { return bpf_program__fd(skel_->progs.foundry_pass); }
int Forwarder::tc_program_fd() const { return bpf_program__fd(skel_->progs.foundry_tc); }
int Forwarder::bum_events_fd() const { return bpf_map__fd(skel_->maps.bum_events); }
int Forwarder::learn_events_fd() const { return bpf_map__fd(skel_->maps.learn_events); }

Result<int> Forwarder::flood_group_fd(Vni vni, bool create) const {
  int outer = bpf_map__fd(skel_->maps.flood_groups);
  __u32 key = vni;
  __u32 id = 0;
  int err = bpf_map_lookup_elem(outer, &key, &id);
  if (err == 0) {
    int fd = bpf_map_get_fd_by_id(id);
    if (fd < 0) return fail(libbpf_error(fd, fmt::format("open flood group of VNI {} (map id {})", vni, id)));
    return fd;
  }
  if (err != -ENOENT) return fail(map_error(err, "flood_groups", "lookup", std::to_string(vni)));
  if (!create) return -1;

  // Same type, sizes and flags as struct flood_group in forwarder.bpf.c:
  // the kernel refuses an inner map that differs from the template.
  std::string name = fmt::format("flood_{}", vni);
  int fd = bpf_map_create(BPF_MAP_TYPE_DEVMAP_HASH, name.c_str(), sizeof(__u32), sizeof(__u32),
                          FDP_FLOOD_GROUP_PORTS, nullptr);
  if (fd < 0) return fail(libbpf_error(fd, fmt::format("create flood group of VNI {}", vni)));
  UniqueFd owned(fd);
  __u32 value = static_cast<__u32>(fd);
  err = bpf_map_update_elem(outer, &key, &value, BPF_NOEXIST);
  if (err == -EEXIST) return flood_group_fd(vni, false);  // lost a race with another writer
  if (err) return fail(map_error(err, "flood_groups", "insert", std::to_string(vni)));
  return owned.release();
}

Result<size_t> Forwarder::fdb_put_all(const std::vector<std::pair<FdbKey, FdbEntry>>& entries) {
  // What each key held before, to put back on failure.
  std::vector<std::optional<FdbEntry>> previous;
  previous.reserve(entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    const auto& [key, entry] = entries[i];
    auto old = fdb_.get(key);
    Status st = old ? fdb_.put(key, entry) : Status(tl::unexpected(old.error()));
    if (!st) {
      for (size_t j = i; j-- > 0;) {
        if (previous[j])
          (void)fdb_.put(entries[j].first, *previous[j]);
        else
          (void)fdb_.erase(entries[j].first);
      }
      return fail(std::move(st.error())
                      .wrap(fmt::format("write {} FDB entries (entry {} failed; none written)", entries.size(), i + 1)));
    }
    previous.push_back(*old);
  }
  return entries.size();
}

Result<size_t> Forwarder::fdb_erase_all(const std::vector<FdbKey>& keys) {
  std::vector<FdbEntry> removed;
  removed.reserve(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    auto old = FOUNDRY_TRY(fdb_.get(keys[i]));
    if (!old)
      return fail(Error(ErrorKind::Validation,
                        fmt::format("delete {} FDB entries: entry {} ({}) does not exist; none deleted", keys.size(),
                                    i + 1, MapCodec<FdbKey>::describe(keys[i])))
                      .with_errno(ENOENT));
    removed.push_back(*old);
  }
  for (size_t i = 0; i < keys.size(); ++i) {
    auto gone = fdb_.erase(keys[i]);
    if (!gone) {
      for (size_t j = 0; j < i; ++j) (void)fdb_.put(keys[j], removed[j]);
      return fail(std::move(gone.error()).wrap(fmt::format("delete {} FDB entries; none deleted", keys.size())));
    }
  }
  return keys.size();
}

Status Forwarder::add_port(uint32_t ifindex, const PortConfig& cfg) {
  if (cfg.uplink)
    return fail(ErrorKind::Validation, "add_port: ifindex {} is the uplink; configure it with set_vtep", ifindex);
  FOUNDRY_TRY(validate_vni(cfg.vni));
  auto ctx = [&] { return fmt::format("add port ifindex {} to VNI {}", ifindex, cfg.vni); };

  auto previous = FOUNDRY_TRY_CTX(ports_.get(ifindex), "{}", ctx());
  if (previous && previous->uplink)
    return fail(ErrorKind::Validation, "{}: the interface is the VTEP's uplink", ctx());

  UniqueFd group;  // declared before undo: undo actions use it
  UndoList undo;
  auto vni_known = FOUNDRY_TRY_CTX(vnis_.get(cfg.vni), "{}", ctx());
  if (!vni_known) {
    FOUNDRY_TRY_CTX(vnis_.put(cfg.vni, VniConfig{}, BPF_NOEXIST), "{}", ctx());
    undo.push("vni", [this, vni = cfg.vni] { (void)vnis_.erase(vni); });
  }
  FOUNDRY_TRY_CTX(tx_ports_.put(ifindex, ifindex), "{}", ctx());
  if (!previous) undo.push("tx_port", [this, ifindex] { (void)tx_ports_.erase(ifindex); });

  group.reset(FOUNDRY_TRY_CTX(flood_group_fd(cfg.vni, true), "{}", ctx()));
  // Undone after the member below (undo runs in reverse): the list is then
  // rebuilt from the group as it was.
  undo.push("flood list", [this, vni = cfg.vni] { (void)sync_flood_ports(vni); });
  __u32 k = ifindex;
  if (int err = bpf_map_update_elem(group.get(), &k, &k, BPF_ANY))
    return fail(map_error(err, fmt::format("flood_{}", cfg.vni), "add port", std::to_string(ifindex))
                    .wrap(ctx()));
  undo.push("flood member", [fd = group.get(), k]() mutable { (void)bpf_map_delete_elem(fd, &k); });
  FOUNDRY_TRY_CTX(sync_flood_ports(cfg.vni), "{}", ctx());

  FOUNDRY_TRY_CTX(ports_.put(ifindex, cfg), "{}", ctx());
  undo.commit();

  if (previous && previous->vni != cfg.vni) {
    // Moved to another VNI: leave the old broadcast domain.
    int old = FOUNDRY_TRY_CTX(flood_group_fd(previous->vni, false), "{}", ctx());
    if (old >= 0) {
      UniqueFd oldg(old);
      (void)bpf_map_delete_elem(oldg.get(), &k);
      FOUNDRY_TRY_CTX(sync_flood_ports(previous->vni), "{}", ctx());
    }
  }
  return ok();
}

Status Forwarder::remove_port(uint32_t ifindex) {
  auto ctx = [&] { return fmt::format("remove port ifindex {}", ifindex); };
  auto cfg = FOUNDRY_TRY_CTX(ports_.get(ifindex), "{}", ctx());
  if (!cfg) return fail(ErrorKind::Validation, "{}: not a port of the forwarder", ctx());
  // ports first: from here on the program ignores frames from the port.
  FOUNDRY_TRY_CTX(ports_.erase(ifindex), "{}", ctx());
  if (!cfg->uplink) {
    int g = FOUNDRY_TRY_CTX(flood_group_fd(cfg->vni, false), "{}", ctx());
    if (g >= 0) {
      UniqueFd group(g);
      __u32 k = ifindex;
      (void)bpf_map_delete_elem(group.get(), &k);
      FOUNDRY_TRY_CTX(sync_flood_ports(cfg->vni), "{}", ctx());
    }
  }
  FOUNDRY_TRY_CTX(tx_ports_.erase(ifindex), "{}", ctx());
  auto entries = FOUNDRY_TRY_CTX(fdb_.entries(), "{}", ctx());
  for (const auto& [key, e] : entries)
    if (e.type == FdbType::Local && e.ifindex == ifindex && e.learned) (void)fdb_.erase(key);
  return ok();
}

Status Forwarder::set_vtep(const VtepConfig& cfg) {
  auto ctx = [&] { return fmt::format("set VTEP {} on uplink ifindex {}", cfg.ip.to_string(), cfg.uplink_ifindex); };
  if (cfg.uplink_ifindex == 0) return fail(ErrorKind::Validation, "{}: no uplink interface", ctx());
  if (cfg.udp_port == 0) return fail(ErrorKind::Validation, "{}: UDP port 0", ctx());
  if (cfg.mtu < 68 + FDP_ENCAP_OVERHEAD)
    return fail(ErrorKind::Validation, "{}: uplink MTU {} leaves no room for VXLAN's {} bytes", ctx(), cfg.mtu,
                FDP_ENCAP_OVERHEAD);
  auto previous = FOUNDRY_TRY_CTX(vtep(), "{}", ctx());
  FOUNDRY_TRY_CTX(tx_ports_.put(cfg.uplink_ifindex, cfg.uplink_ifindex), "{}", ctx());
  FOUNDRY_TRY_CTX(ports_.put(cfg.uplink_ifindex, PortConfig{0, true, false}), "{}", ctx());
  FOUNDRY_TRY_CTX(vtep_.put(0, cfg), "{}", ctx());
  if (previous && previous->uplink_ifindex != 0 && previous->uplink_ifindex != cfg.uplink_ifindex) {
    (void)ports_.erase(previous->uplink_ifindex);
  }
  return ok();
}

Result<std::optional<VtepConfig>> Forwarder::vtep() const {
  auto v = FOUNDRY_TRY(vtep_.get(0));
  if (!v || v->ip.to_u32() == 0) return std::optional<VtepConfig>{};
  return v;
}

Status Forwarder::clear_vtep() {
  auto previous = FOUNDRY_TRY_CTX(vtep(), "clear VTEP");
  FOUNDRY_TRY_CTX(vtep_.put(0, VtepConfig{net::Ipv4{}, 0, 0, 0}), "clear VTEP");
  if (previous) (void)ports_.erase(previous->uplink_ifindex);
  return ok();
}

Status Forwarder::add_neighbor(net::Ipv4 ip, const Neighbor& n) {
  auto ctx = [&] { return fmt::format("add underlay neighbour {}", ip.to_string()); };
  if (n.ifindex == 0) return fail(ErrorKind::Validation, "{}: no egress interface", ctx());
  if (n.dst_mac.is_multicast() || n.dst_mac.is_zero())
    return fail(ErrorKind::Validation, "{}: next hop MAC {} is not a unicast address", ctx(), n.dst_mac.to_string());
  FOUNDRY_TRY_CTX(tx_ports_.put(n.ifindex, n.ifindex), "{}", ctx());
  FOUNDRY_TRY_CTX(neighbors_.put(ip, n), "{}", ctx());
  return ok();
}

Status Forwarder::add_flood_remote(Vni vni, net::Ipv4 vtep, uint16_t port) {
  FOUNDRY_TRY(validate_vni(vni));
  auto ctx = [&] { return fmt::format("add VTEP {} to the flood list of VNI {}", vtep.to_string(), vni); };
  FOUNDRY_TRY_CTX(flood_remotes_.put(FloodRemoteKey{vni, vtep}, FloodRemote{port}), "{}", ctx());
  FOUNDRY_TRY_CTX(vnis_.put(vni, VniConfig{true}), "{}", ctx());
  return ok();
}

Status Forwarder::remove_flood_remote(Vni vni, net::Ipv4 vtep) {
  auto ctx = [&] { return fmt::format("remove VTEP {} from the flood list of VNI {}", vtep.to_string(), vni); };
  FOUNDRY_TRY_CTX(flood_remotes_.erase(FloodRemoteKey{vni, vtep}), "{}", ctx());
  auto all = FOUNDRY_TRY_CTX(flood_remotes_.entries(), "{}", ctx());
  bool any = false;
  for (const auto& [k, v] : all) any = any || k.vni == vni;
  if (!any) {
    auto cur = FOUNDRY_TRY_CTX(vnis_.get(vni), "{}", ctx());
    if (cur) FOUNDRY_TRY_CTX(vnis_.put(vni, VniConfig{false}), "{}", ctx());
  }
  return ok();
}

Result<std::vector<uint32_t>> Forwarder::flood_group(Vni vni) const {
  std::vector<uint32_t> out;
  int g = FOUNDRY_TRY(flood_group_fd(vni, false));
  if (g < 0) return out;
  TypedMap<uint32_t, uint32_t> group(g, fmt::format("flood_{}", vni));
  UniqueFd owned(g);
  auto entries = FOUNDRY_TRY(group.entries());
  for (const auto& [k, v] : entries) out.push_back(v);
  return out;
}

Status Forwarder::sync_flood_ports(Vni vni) {
  auto members = FOUNDRY_TRY(flood_group(vni));
  int fd = bpf_map__fd(skel_->maps.flood_ports);
  __u32 key = vni;
  if (members.empty()) {
    int err = bpf_map_delete_elem(fd, &key);
    if (err && err != -ENOENT) return fail(map_error(err, "flood_ports", "delete", std::to_string(vni)));
    return ok();
  }
  std::sort(members.begin(), members.end());
  fdp_flood_ports v{};
  for (uint32_t idx : members) {
    if (v.count == FDP_TC_FLOOD_PORTS) break;
    v.ifindex[v.count++] = idx;
  }
  if (int err = bpf_map_update_elem(fd, &key, &v, BPF_ANY))
    return fail(map_error(err, "flood_ports", "update", std::to_string(vni)));
  return ok();
}

Result<Counters> Forwarder::counters() const {
  int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) return fail(libbpf_error(ncpu, "count possible CPUs"));
  int fd = bpf_map__fd(skel_->maps.counters);
  std::vector<fdp_counter_val> per_cpu(static_cast<size_t>(ncpu));
  Counters c;
  for (__u32 i = 0; i < FDP_COUNTER_MAX; ++i) {
    if (int err = bpf_map_lookup_elem(fd, &i, per_cpu.data()))
      return fail(map_error(err, "counters", "lookup", std::string(counter_name(i))));
    for (const auto& v : per_cpu) {
      c.values[i].packets += v.packets;
      c.values[i].bytes += v.bytes;
    }
  }
  return c;
}

Status Forwarder::reset_counters() {
  int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) return fail(libbpf_error(ncpu, "count possible CPUs"));
  int fd = bpf_map__fd(skel_->maps.counters);
  std::vector<fdp_counter_val> zero(static_cast<size_t>(ncpu));
  for (__u32 i = 0; i < FDP_COUNTER_MAX; ++i)
    if (int err = bpf_map_update_elem(fd, &i, zero.data(), BPF_ANY))
      return fail(map_error(err, "counters", "reset", std::string(counter_name(i))));
  return ok();
}

}  // namespace foundry::dataplane
