// load_vm_file / load_vm_yaml: the VM file of seed 001 into a VmConfig.
//
// One pass over the YAML tree reads every field, reporting type problems as
// it goes and carrying on with the rest; the cross-field rules (duplicate
// devices and addresses, image XOR empty, one default route) run at the end
// on whatever was readable. The caller gets every problem of the file at once.
#include <algorithm>
#include <array>
#include <map>

#include <fmt/format.h>

#include "foundry/common/file.h"
#include "foundry/config/rules.h"
#include "foundry/config/vm_config.h"
#include "yaml_reader.h"

namespace foundry::config {

namespace {

using detail::Field;
using detail::Map;
using detail::Pos;
using detail::Reader;
using detail::Value;

constexpr std::array<std::string_view, 13> kTopKeys = {
    "name",        "vcpus",    "memory_gib", "boot_disk",    "data_disks",  "network_interfaces", "cloud_init",
    "cpu_mode",    "autostart", "storage_pool", "accelerator", "firmware", "firmware_path"};
constexpr std::array<std::string_view, 4> kBootDiskKeys = {"size_gb", "image", "format", "empty"};
constexpr std::array<std::string_view, 2> kDataDiskKeys = {"device", "size_gb"};
constexpr std::array<std::string_view, 5> kInterfaceKeys = {"ip", "gateway", "dns_servers", "bridge",
                                                            "default_route"};
constexpr std::array<std::string_view, 4> kCloudInitKeys = {"fqdn", "ssh_keys", "root_password_hash", "ssh_pwauth"};

constexpr std::array<std::string_view, 2> kFormats = {"qcow2", "raw"};
constexpr std::array<std::string_view, 2> kCpuModes = {"host-model", "host-passthrough"};
constexpr std::array<std::string_view, 2> kAccelerators = {"kvm", "qemu"};
constexpr std::array<std::string_view, 2> kFirmwares = {"uefi", "bios"};

// Upper bounds keep later arithmetic (KiB, bytes) far from overflow; they are
// beyond what QEMU on one host can give a guest.
constexpr uint64_t kMaxVcpus = 4096;
constexpr uint64_t kMaxMemoryGib = 65536;
constexpr uint64_t kMaxDiskGb = 1u << 20;

std::string lowercase(std::string s) {
  for (auto& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

class VmLoader {
 public:
  explicit VmLoader(Reader& r) : r_(r) {}

  VmConfig load(const YAML::Node& root) {
    auto m = r_.mapping(Value{root, detail::pos_of(root, {1, 1}), ""}, kTopKeys, "the VM file");
    if (!m) return vm_;
    r_.require(*m, {"name", "vcpus", "memory_gib", "boot_disk", "network_interfaces"});
    for (const auto& f : m->fields) top_field(f);
    check_interfaces();
    if (vm_.firmware == Firmware::Bios && !vm_.firmware_path.empty())
      r_.error(firmware_path_pos_, "firmware_path", "firmware_path is set but firmware is bios",
               "firmware_path names the UEFI (OVMF) code file; remove it or set firmware: uefi");
    if (vm_.cloud_init && vm_.cloud_init->hostname.empty()) {
      // Without an fqdn the VM name is the host name; '_' is legal in VM
      // names but not in host names (RFC 952/1123).
      std::string h = vm_.name;
      std::replace(h.begin(), h.end(), '_', '-');
      vm_.cloud_init->hostname = h;
    }
    return std::move(vm_);
  }

 private:
  void top_field(const Field& f) {
    const Value& v = f.value;
    if (f.key == "name") {
      if (auto s = r_.string(v)) {
        vm_.name = lowercase(*s);
        if (auto bad = check_vm_name(vm_.name)) r_.error(v.pos, v.path, bad->message, bad->hint);
      }
    } else if (f.key == "vcpus") {
      if (auto n = r_.positive(v, kMaxVcpus, "vcpus: 4")) vm_.vcpus = static_cast<uint32_t>(*n);
    } else if (f.key == "memory_gib") {
      if (auto n = r_.positive(v, kMaxMemoryGib, "memory_gib: 8")) vm_.memory_gib = *n;
    } else if (f.key == "boot_disk") {
      boot_disk(v);
    } else if (f.key == "data_disks") {
      data_disks(v);
    } else if (f.key == "network_interfaces") {
      network_interfaces(v);
    } else if (f.key == "cloud_init") {
      cloud_init(v);
    } else if (f.key == "cpu_mode") {
      if (auto i = r_.choice(v, kCpuModes)) vm_.cpu_mode = *i == 0 ? CpuMode::HostModel : CpuMode::HostPassthrough;
    } else if (f.key == "autostart") {
      if (auto b = r_.boolean(v)) vm_.autostart = *b;
    } else if (f.key == "storage_pool") {
      if (auto s = r_.string(v)) {
        vm_.storage_pool = *s;
        vm_.storage_pool_set = true;
        if (auto bad = check_pool_name(*s)) r_.error(v.pos, v.path, bad->message, bad->hint);
      }
    } else if (f.key == "accelerator") {
      if (auto i = r_.choice(v, kAccelerators)) {
        vm_.accelerator = *i == 0 ? Accelerator::Kvm : Accelerator::Qemu;
        vm_.accelerator_set = true;
      }
    } else if (f.key == "firmware") {
      if (auto i = r_.choice(v, kFirmwares)) {
        vm_.firmware = *i == 0 ? Firmware::Uefi : Firmware::Bios;
        vm_.firmware_set = true;
      }
    } else if (f.key == "firmware_path") {
      if (auto s = r_.string(v)) {
        firmware_path_pos_ = v.pos;
        if (auto bad = check_absolute_path(*s))
          r_.error(v.pos, v.path, bad->message, bad->hint);
        else
          vm_.firmware_path = *s;
      }
    }
  }

  void boot_disk(const Value& v) {
    auto m = r_.mapping(v, kBootDiskKeys, "boot_disk");
    if (!m) return;
    r_.require(*m, {"size_gb"});
    BootDisk& d = vm_.boot_disk;
    const Field* image = m->get("image");
    const Field* empty = m->get("empty");
    if (const Field* f = m->get("size_gb"))
      if (auto n = r_.positive(f->value, kMaxDiskGb, "size_gb: 50")) d.size_gb = *n;
    if (const Field* f = m->get("format"))
      if (auto i = r_.choice(f->value, kFormats)) d.format = *i == 0 ? DiskFormat::Qcow2 : DiskFormat::Raw;
    bool empty_ok = true;
    if (empty) {
      auto b = r_.boolean(empty->value);
      empty_ok = b.has_value();
      d.empty = b.value_or(false);
    }
    bool image_ok = true;
    if (image) {
      auto s = r_.string(image->value);
      image_ok = s.has_value();
      if (s) image_value(*s, image->value);
    }
    // image XOR empty: true. Only judged when both keys read cleanly, so a
    // typo in one is not reported twice.
    if (!image_ok || !empty_ok) return;
    if (image && d.empty) {
      r_.error(empty->value.pos, empty->value.path, "boot_disk has both image and empty: true",
               "keep one: image makes a copy-on-write disk on a base image, empty: true a blank disk");
    } else if (!image && !d.empty) {
      r_.error(m->pos, detail::join_path(m->path, "image"),
               empty ? "boot_disk has empty: false and no image" : "boot_disk needs image or empty: true",
               "add `image: fedora-42` (an image pool volume) or `image: /path/to/base.qcow2`, or `empty: true`");
    }
  }

  void image_value(const std::string& s, const Value& v) {
    BootDisk& d = vm_.boot_disk;
    if (s.empty()) {
      r_.error(v.pos, v.path, "image is empty",
               "name a base image (fedora-42) or a file (/var/lib/libvirt/images/fedora-42.qcow2)");
      return;
    }
    if (s.find('/') != std::string::npos) {
      if (auto bad = check_absolute_path(s)) {
        r_.error(v.pos, v.path, "image " + bad->message, bad->hint);
        return;
      }
      d.image_kind = ImageKind::Path;
    } else {
      if (auto bad = check_image_name(s)) {
        r_.error(v.pos, v.path, bad->message,
                 "write an image pool volume name (see `foundry image list`) or an absolute path");
        return;
      }
      d.image_kind = ImageKind::PoolVolume;
    }
    d.image = s;
  }

  void data_disks(const Value& v) {
    auto items = r_.sequence(v, "data_disks: [{device: vdb, size_gb: 100}]");
    if (!items) return;
    std::map<std::string, Pos, std::less<>> seen;  // device -> where first used
    for (const auto& item : *items) {
      auto m = r_.mapping(item, kDataDiskKeys, "a data disk");
      if (!m) continue;
      r_.require(*m, {"device", "size_gb"});
      DataDisk d;
      bool ok = true;
      if (const Field* f = m->get("device")) {
        auto s = r_.string(f->value);
        if (!s) {
          ok = false;
        } else if (auto bad = check_data_disk_device(*s)) {
          r_.error(f->value.pos, f->value.path, bad->message, bad->hint);
          ok = false;
        } else {
          auto [dup, fresh] = seen.emplace(*s, f->value.pos);
          if (!fresh) {
            r_.error(f->value.pos, f->value.path,
                     fmt::format("device {} is already used by the data disk at line {}", *s, dup->second.line),
                     fmt::format("each data disk needs its own device; {} is free", next_free_device(seen)));
            ok = false;
          }
          d.device = *s;
        }
      } else {
        ok = false;
      }
      if (const Field* f = m->get("size_gb")) {
        if (auto n = r_.positive(f->value, kMaxDiskGb, "size_gb: 100")) d.size_gb = *n;
        else ok = false;
      } else {
        ok = false;
      }
      if (ok) vm_.data_disks.push_back(std::move(d));
    }
  }

  static std::string next_free_device(const std::map<std::string, Pos, std::less<>>& seen) {
    for (char a = 0; a <= 'z'; a = a == 0 ? 'a' : static_cast<char>(a + 1)) {
      for (char b = a == 0 ? 'b' : 'a'; b <= 'z'; ++b) {
        std::string dev = a == 0 ? fmt::format("vd{}", b) : fmt::format("vd{}{}", a, b);
        if (!seen.contains(dev)) return dev;
      }
    }
    return "none";
  }

  struct InterfaceSeen {
    bool ip_ok = false;
    Pos ip_pos;
    Pos default_route_pos;
    bool default_route_set = false;
  };

  void network_interfaces(const Value& v) {
    auto items = r_.sequence(v, "network_interfaces: [{ip: 10.20.30.40/24, gateway: 10.20.30.1, bridge: br0}]");
    if (!items) return;
    if (items->empty()) {
      r_.error(v.pos, v.path, "is empty: a VM needs at least one interface",
               "add `- ip: 10.20.30.40/24`, `gateway: 10.20.30.1` and `bridge: br0`");
      return;
    }
    for (size_t i = 0; i < items->size(); ++i) {
      // One entry per list item, readable or not, so that index i here is
      // network_interfaces[i] in the file. A file with errors is discarded.
      NetworkInterface nic;
      InterfaceSeen seen;
      interface((*items)[i], i, nic, seen);
      vm_.network_interfaces.push_back(std::move(nic));
      interfaces_seen_.push_back(seen);
    }
  }

  void interface(const Value& item, size_t index, NetworkInterface& nic, InterfaceSeen& seen) {
    auto m = r_.mapping(item, kInterfaceKeys, "a network interface");
    if (!m) return;
    r_.require(*m, {"ip", "gateway", "bridge"});
    bool have_ip = false, have_gw = false;
    Pos gw_pos;
    std::string gw_path;
    if (const Field* f = m->get("ip")) {
      if (auto s = r_.string(f->value)) {
        if (auto cidr = parse_interface_ip(*s, f->value)) {
          nic.ip = *cidr;
          have_ip = true;
          seen.ip_pos = f->value.pos;
          seen.ip_ok = true;
        }
      }
    }
    if (const Field* f = m->get("gateway")) {
      if (auto s = r_.string(f->value)) {
        if (auto gw = parse_gateway(*s, f->value)) {
          nic.gateway = *gw;
          have_gw = true;
          gw_pos = f->value.pos;
          gw_path = f->value.path;
        }
      }
    }
    if (have_ip && have_gw) {
      if (nic.gateway == nic.ip.addr) {
        r_.error(gw_pos, gw_path, fmt::format("gateway {} is the interface's own address", nic.gateway.to_string()),
                 "the gateway is the router of the subnet, e.g. the .1 address");
      } else if (!nic.ip.contains(nic.gateway)) {
        r_.error(gw_pos, gw_path,
                 fmt::format("gateway {} is not in the interface's subnet {}/{}", nic.gateway.to_string(),
                             nic.ip.network().to_string(), nic.ip.prefix),
                 nic.ip.prefix >= 31 ? std::string("a /31 or /32 address has no room for a gateway; use the subnet's "
                                                   "real prefix length, e.g. /24")
                                     : fmt::format("check the prefix length of ip or the gateway; {} is in the subnet",
                                                   host_example(nic.ip)));
      }
    }
    if (const Field* f = m->get("bridge")) {
      if (auto s = r_.string(f->value)) {
        if (auto bad = check_interface_name(*s))
          r_.error(f->value.pos, f->value.path, bad->message, bad->hint);
        else
          nic.bridge = *s;
      }
    }
    if (const Field* f = m->get("dns_servers")) {
      if (auto list = r_.sequence(f->value, "dns_servers: [8.8.8.8, 1.1.1.1]")) {
        for (const auto& d : *list) {
          auto s = r_.string(d);
          if (!s) continue;
          if (net::Ipv4::parse(*s) || net::is_ipv6(*s)) {
            nic.dns_servers.push_back(*s);
          } else {
            bool has_prefix = s->find('/') != std::string::npos;
            r_.error(d.pos, d.path, fmt::format("DNS server \"{}\" is not an IPv4 or IPv6 address", *s),
                     has_prefix ? "write the address without a /prefix"
                                : "write an address such as 1.1.1.1 or 2606:4700:4700::1111");
          }
        }
      }
    }
    if (const Field* f = m->get("default_route")) {
      if (auto b = r_.boolean(f->value)) {
        nic.default_route = *b;
        seen.default_route_set = true;
        seen.default_route_pos = f->value.pos;
      }
    } else {
      nic.default_route = index == 0;  // seed: default true for the first interface only
    }
  }

  static std::string host_example(const net::Ipv4Cidr& c) {
    return net::Ipv4::from_u32(c.network().to_u32() + 1).to_string();
  }

  std::optional<net::Ipv4Cidr> parse_interface_ip(const std::string& s, const Value& v) {
    auto cidr = net::Ipv4Cidr::parse(s);
    auto slash = s.find('/');
    std::string addr_part = s.substr(0, slash);
    if (!cidr) {
      if (slash == std::string::npos && net::Ipv4::parse(s))
        r_.error(v.pos, v.path, fmt::format("ip {} has no prefix length", s),
                 fmt::format("write it with the subnet's prefix length, e.g. {}/24", s));
      else if (net::is_ipv6(addr_part))
        r_.error(v.pos, v.path, fmt::format("ip {} is IPv6; interface addresses are IPv4", s),
                 "give an IPv4 address with prefix length, e.g. 10.20.30.40/24");
      else if (slash != std::string::npos && net::Ipv4::parse(addr_part))
        r_.error(v.pos, v.path, fmt::format("ip {} has an invalid prefix length", s),
                 "the prefix length is a number from 0 to 32, e.g. /24");
      else
        r_.error(v.pos, v.path, fmt::format("ip \"{}\" is not an IPv4 address with prefix length", s),
                 "write four numbers 0-255 (no leading zeros) and a prefix, e.g. 10.20.30.40/24");
      return std::nullopt;
    }
    uint8_t first = cidr->addr.octets[0];
    if (first == 0 || first == 127 || first >= 224) {
      r_.error(v.pos, v.path,
               fmt::format("ip {} is a {} address, not one a host can use", s,
                           first == 127 ? "loopback" : first >= 240 ? "reserved" : first >= 224 ? "multicast"
                                                                                                  : "\"this network\""),
               "give the VM a unicast address of its subnet");
      return std::nullopt;
    }
    if (cidr->prefix <= 30) {
      uint32_t host_mask = cidr->prefix == 0 ? ~0u : ~(~0u << (32 - cidr->prefix));
      uint32_t host = cidr->addr.to_u32() & host_mask;
      if (host == 0 || host == host_mask) {
        r_.error(v.pos, v.path,
                 fmt::format("ip {} is the {} address of its subnet", s, host == 0 ? "network" : "broadcast"),
                 fmt::format("use a host address, e.g. {}/{}", host_example(*cidr), cidr->prefix));
        return std::nullopt;
      }
    }
    return cidr;
  }

  std::optional<net::Ipv4> parse_gateway(const std::string& s, const Value& v) {
    if (auto ip = net::Ipv4::parse(s)) return ip;
    if (s.find('/') != std::string::npos && net::Ipv4::parse(s.substr(0, s.find('/'))))
      r_.error(v.pos, v.path, fmt::format("gateway {} has a prefix length", s),
               fmt::format("write the address only: {}", s.substr(0, s.find('/'))));
    else if (net::is_ipv6(s))
      r_.error(v.pos, v.path, fmt::format("gateway {} is IPv6; gateways are IPv4", s));
    else
      r_.error(v.pos, v.path, fmt::format("gateway \"{}\" is not an IPv4 address", s),
               "write four numbers 0-255, e.g. 10.20.30.1");
    return std::nullopt;
  }

  void check_interfaces() {
    const auto& nics = vm_.network_interfaces;
    // No duplicate addresses: the MAC and tap name are derived from the IP,
    // so two interfaces with one address would collide on the host too.
    std::map<net::Ipv4, size_t> first_with;
    for (size_t i = 0; i < nics.size(); ++i) {
      if (!interfaces_seen_[i].ip_ok) continue;
      auto [it, fresh] = first_with.emplace(nics[i].ip.addr, i);
      if (fresh) continue;
      size_t j = it->second;
      r_.error(interfaces_seen_[i].ip_pos, fmt::format("network_interfaces[{}].ip", i),
               fmt::format("ip {} is already used by network_interfaces[{}] (line {})", nics[i].ip.addr.to_string(), j,
                           interfaces_seen_[j].ip_pos.line),
               "each interface needs its own address (its MAC and tap name derive from it)");
    }
    // Two default routes on one guest fight each other; cloud-init writes
    // what it is given.
    std::optional<size_t> first_default;
    for (size_t i = 0; i < nics.size(); ++i) {
      if (!nics[i].default_route) continue;
      if (!first_default) {
        first_default = i;
        continue;
      }
      const auto& s = interfaces_seen_[i];
      r_.error(s.default_route_pos, fmt::format("network_interfaces[{}].default_route", i),
               fmt::format("network_interfaces[{}] also has default_route: true", *first_default),
               "only one interface carries the default route; set default_route: false on the others");
    }
  }

  void cloud_init(const Value& v) {
    auto m = r_.mapping(v, kCloudInitKeys, "cloud_init");
    if (!m) return;
    CloudInit ci;
    if (const Field* f = m->get("fqdn")) {
      if (auto s = r_.string(f->value)) {
        std::string fqdn = lowercase(*s);
        if (auto bad = check_fqdn(fqdn)) {
          r_.error(f->value.pos, f->value.path, bad->message, bad->hint);
        } else {
          ci.fqdn = fqdn;
          ci.hostname = fqdn.substr(0, fqdn.find('.'));
        }
      }
    }
    if (const Field* f = m->get("ssh_keys")) {
      if (auto list = r_.sequence(f->value, "ssh_keys: [\"ssh-ed25519 AAAA... you@host\"]")) {
        for (const auto& k : *list) {
          auto s = r_.string(k);
          if (!s) continue;
          if (auto bad = check_ssh_public_key(*s)) {
            r_.error(k.pos, k.path, bad->message, bad->hint);
            continue;
          }
          // Surrounding whitespace is not part of the key; authorized_keys
          // lines must not carry a stray newline from a YAML block scalar.
          size_t b = s->find_first_not_of(" \t\r\n");
          size_t e = s->find_last_not_of(" \t\r\n");
          ci.ssh_keys.push_back(s->substr(b, e - b + 1));
        }
      }
    }
    if (const Field* f = m->get("root_password_hash")) {
      if (auto s = r_.string(f->value)) {
        if (auto bad = check_password_hash(*s))
          r_.error(f->value.pos, f->value.path, bad->message, bad->hint);
        else
          ci.root_password_hash = *s;
      }
    }
    if (const Field* f = m->get("ssh_pwauth"))
      if (auto b = r_.boolean(f->value)) ci.ssh_pwauth = *b;
    vm_.cloud_init = std::move(ci);
  }

  Reader& r_;
  VmConfig vm_;
  Pos firmware_path_pos_;
  std::vector<InterfaceSeen> interfaces_seen_;
};

}  // namespace

Result<VmConfig> load_vm_yaml(const std::string& text, const std::string& name_for_messages) {
  return detail::load_document<VmConfig>(text, name_for_messages, "examples/simple-vm.yaml", ErrorKind::Validation,
                                         [](Reader& r, const YAML::Node& root) { return VmLoader(r).load(root); });
}

Result<VmConfig> load_vm_file(const std::string& path) {
  auto vm = detail::load_document_file(path, "load VM file", load_vm_yaml);
  if (vm) vm->source_file = path;
  return vm;
}

}  // namespace foundry::config
