#include "foundry/virt/domain_xml.h"

#include <sys/stat.h>

#include <sstream>

#include <pugixml.hpp>

#include "foundry/net/ip.h"

namespace foundry::virt {

namespace {

bool is_file(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// Debian first (the 4M builds are what libvirt's firmware descriptors pick),
// then Fedora's layout as the seed shows it, then the older single file.
const std::vector<Firmware>& host_candidates() {
  static const std::vector<Firmware> c = {
      {"/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd"},
      {"/usr/share/OVMF/OVMF_CODE.fd", "/usr/share/OVMF/OVMF_VARS.fd"},
      {"/usr/share/edk2/ovmf/OVMF_CODE.fd", "/usr/share/edk2/ovmf/OVMF_VARS.fd"},
      {"/usr/share/edk2/x64/OVMF_CODE.fd", "/usr/share/edk2/x64/OVMF_VARS.fd"},
  };
  return c;
}

pugi::xml_node child(pugi::xml_node parent, const char* name) { return parent.append_child(name); }

pugi::xml_node text_child(pugi::xml_node parent, const char* name, const std::string& text) {
  auto n = parent.append_child(name);
  n.text().set(text.c_str());
  return n;
}

void attr(pugi::xml_node n, const char* name, const std::string& value) {
  n.append_attribute(name).set_value(value.c_str());
}

void volume_disk(pugi::xml_node devices, const std::string& pool, const std::string& volume, const char* device,
                 const char* format, const std::string& target, const char* bus, bool cache_none) {
  auto disk = child(devices, "disk");
  attr(disk, "type", "volume");
  attr(disk, "device", device);
  auto driver = child(disk, "driver");
  attr(driver, "name", "qemu");
  attr(driver, "type", format);
  if (cache_none) attr(driver, "cache", "none");
  auto source = child(disk, "source");
  attr(source, "pool", pool);
  attr(source, "volume", volume);
  auto t = child(disk, "target");
  attr(t, "dev", target);
  attr(t, "bus", bus);
  if (std::string_view(device) == "cdrom") child(disk, "readonly");
}

}  // namespace

Result<Firmware> resolve_firmware(const config::VmConfig& vm, const std::vector<Firmware>& candidates) {
  if (vm.firmware == config::Firmware::Bios) return Firmware{};
  if (!vm.firmware_path.empty()) {
    if (!is_file(vm.firmware_path))
      return fail(Error(ErrorKind::Validation, fmt::format("firmware_path {} does not exist", vm.firmware_path))
                      .with_hint("point firmware_path at an OVMF_CODE file, or remove it to use the host's OVMF"));
    Firmware f{vm.firmware_path, ""};
    // OVMF_CODE_4M.fd pairs with OVMF_VARS_4M.fd in the same directory.
    auto pos = f.code.rfind("CODE");
    if (pos != std::string::npos) {
      std::string vars = f.code;
      vars.replace(pos, 4, "VARS");
      if (is_file(vars)) f.vars_template = vars;
    }
    return f;
  }
  for (const auto& c : candidates) {
    if (is_file(c.code)) return Firmware{c.code, is_file(c.vars_template) ? c.vars_template : ""};
  }
  std::string tried;
  for (const auto& c : candidates) tried += (tried.empty() ? "" : ", ") + c.code;
  return fail(Error(ErrorKind::Validation, "UEFI firmware (OVMF) not found on this host (looked for " + tried + ")")
                  .with_hint("install it (apt-get install ovmf), set firmware_path, or set firmware: bios"));
}

Result<Firmware> resolve_firmware(const config::VmConfig& vm) { return resolve_firmware(vm, host_candidates()); }

std::string domain_xml(const config::VmConfig& vm, const DomainOptions& opts) {
  using config::Accelerator;
  pugi::xml_document doc;
  auto dom = doc.append_child("domain");
  attr(dom, "type", vm.accelerator == Accelerator::Kvm ? "kvm" : "qemu");
  text_child(dom, "name", vm.name);

  // What destroy/list need later: the pool and the disks this VM owns, and
  // each interface's address (list shows it when there is no guest agent).
  auto meta = child(dom, "metadata");
  auto fv = child(meta, "foundry:vm");
  attr(fv, "xmlns:foundry", kMetadataNamespace);
  text_child(fv, "foundry:pool", vm.storage_pool);
  if (!vm.source_file.empty()) text_child(fv, "foundry:source", vm.source_file);
  for (const auto& nic : vm.network_interfaces) {
    auto n = child(fv, "foundry:interface");
    attr(n, "ip", nic.ip.to_string());
    attr(n, "bridge", nic.bridge);
  }

  auto mem = text_child(dom, "memory", std::to_string(vm.memory_gib));
  attr(mem, "unit", "GiB");
  auto vcpu = text_child(dom, "vcpu", std::to_string(vm.vcpus));
  attr(vcpu, "placement", "static");

  auto os = child(dom, "os");
  auto type = text_child(os, "type", "hvm");
  attr(type, "arch", "x86_64");
  attr(type, "machine", "q35");
  if (!opts.firmware.code.empty()) {
    auto loader = text_child(os, "loader", opts.firmware.code);
    attr(loader, "readonly", "yes");
    attr(loader, "type", "pflash");
    if (!opts.firmware.vars_template.empty()) {
      auto nv = child(os, "nvram");
      attr(nv, "template", opts.firmware.vars_template);
    }
  }
  attr(child(os, "boot"), "dev", "hd");

  auto features = child(dom, "features");
  child(features, "acpi");
  child(features, "apic");

  // Under TCG there is no host CPU to model or pass through; "maximum" gives
  // the emulator's most capable CPU, which is what a user of qemu wants.
  auto cpu = child(dom, "cpu");
  if (vm.accelerator == Accelerator::Qemu) attr(cpu, "mode", "maximum");
  else attr(cpu, "mode", std::string(config::to_string(vm.cpu_mode)));

  auto clock = child(dom, "clock");
  attr(clock, "offset", "utc");
  text_child(dom, "on_poweroff", "destroy");
  text_child(dom, "on_reboot", "restart");
  text_child(dom, "on_crash", "destroy");

  auto devices = child(dom, "devices");
  const auto& pool = vm.storage_pool;
  // The boot disk is always qcow2 in the VM pool (an overlay on the base
  // image, or a blank qcow2); `format` describes the base image.
  volume_disk(devices, pool, VolumeName::boot(vm.name), "disk", "qcow2", "vda", "virtio", true);
  for (const auto& d : vm.data_disks)
    volume_disk(devices, pool, VolumeName::data(vm.name, d.device), "disk", "qcow2", d.device, "virtio", false);
  if (opts.has_cloudinit_iso && vm.cloud_init)
    volume_disk(devices, pool, VolumeName::cloudinit(vm.name), "cdrom", "raw", "sda", "sata", false);

  for (const auto& nic : vm.network_interfaces) {
    auto iface = child(devices, "interface");
    attr(iface, "type", "bridge");
    attr(child(iface, "mac"), "address", net::derive_mac_from_ip(nic.ip.addr));
    attr(child(iface, "source"), "bridge", nic.bridge);
    attr(child(iface, "target"), "dev", net::derive_tap_name(nic.ip.addr));
    attr(child(iface, "model"), "type", "virtio");
  }

  auto serial = child(devices, "serial");
  attr(serial, "type", "pty");
  auto st = child(serial, "target");
  attr(st, "type", "isa-serial");
  attr(st, "port", "0");
  attr(child(st, "model"), "name", "isa-serial");
  auto console = child(devices, "console");
  attr(console, "type", "pty");
  auto ct = child(console, "target");
  attr(ct, "type", "serial");
  attr(ct, "port", "0");

  // A guest agent channel lets `vm list` show live addresses when the guest
  // runs qemu-guest-agent; harmless when it does not.
  auto chan = child(devices, "channel");
  attr(chan, "type", "unix");
  auto chan_t = child(chan, "target");
  attr(chan_t, "type", "virtio");
  attr(chan_t, "name", "org.qemu.guest_agent.0");

  // Entropy for first boot: key generation (sshd, cloud-init) otherwise
  // stalls for minutes under emulation.
  auto rng = child(devices, "rng");
  attr(rng, "model", "virtio");
  auto backend = text_child(rng, "backend", "/dev/urandom");
  attr(backend, "model", "random");

  std::ostringstream os_;
  doc.save(os_, "  ", pugi::format_indent | pugi::format_no_declaration, pugi::encoding_utf8);
  return os_.str();
}

}  // namespace foundry::virt
