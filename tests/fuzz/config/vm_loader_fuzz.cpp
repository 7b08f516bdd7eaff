// libFuzzer target for the VM file loader and the Foundry config loader.
//
// Besides "no crash, leak or hang" (ASan, UBSan and libFuzzer's limits), it
// checks the loader's contract on every input: a VmConfig that loads obeys
// every rule, and a failure always comes as a Validation error with at least
// one diagnostic placed in the file. A broken contract aborts, which the
// fuzzer reports like a crash. Run it with scripts/fuzz.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>

#include "foundry/config/foundry_config.h"
#include "foundry/config/rules.h"
#include "foundry/config/vm_config.h"

using namespace foundry;
using namespace foundry::config;

namespace {

[[noreturn]] void broken(const char* what, const std::string& detail = {}) {
  std::fprintf(stderr, "vm_loader_fuzz: contract broken: %s %s\n", what, detail.c_str());
  std::abort();
}

void check_error(const Error& e, ErrorKind want_kind, const std::string& file) {
  if (e.kind() != want_kind) broken("wrong error kind", e.to_string());
  if (e.diagnostics().empty()) broken("error without diagnostics", e.to_string());
  if (e.message().rfind(file + ": ", 0) != 0) broken("summary does not name the file", e.message());
  for (const auto& d : e.diagnostics()) {
    if (d.file != file) broken("diagnostic names another file", d.to_string());
    if (d.line < 1 || d.column < 1) broken("diagnostic without a position", d.to_string());
    if (d.message.empty()) broken("diagnostic without a message", d.to_string());
  }
}

void check_valid(const VmConfig& vm) {
  if (check_vm_name(vm.name)) broken("invalid name accepted", vm.name);
  if (vm.vcpus == 0 || vm.memory_gib == 0 || vm.boot_disk.size_gb == 0) broken("zero size accepted");
  if (vm.boot_disk.empty != (vm.boot_disk.image_kind == ImageKind::None)) broken("image XOR empty broken");
  if (vm.boot_disk.empty != vm.boot_disk.image.empty()) broken("image/empty mismatch");
  if (vm.network_interfaces.empty()) broken("no network interface accepted");
  std::set<std::string> devices, ips;
  int defaults = 0;
  for (const auto& d : vm.data_disks) {
    if (check_data_disk_device(d.device) || !devices.insert(d.device).second || d.size_gb == 0)
      broken("bad data disk accepted", d.device);
  }
  for (const auto& n : vm.network_interfaces) {
    if (check_interface_name(n.bridge)) broken("bad bridge accepted", n.bridge);
    if (!n.ip.contains(n.gateway) || n.gateway == n.ip.addr) broken("gateway outside subnet accepted");
    if (!ips.insert(n.ip.addr.to_string()).second) broken("duplicate ip accepted");
    defaults += n.default_route ? 1 : 0;
  }
  if (defaults > 1) broken("two default routes accepted");
  if (vm.cloud_init) {
    if (vm.cloud_init->hostname.empty()) broken("empty hostname");
    if (!vm.cloud_init->fqdn.empty() && check_fqdn(vm.cloud_init->fqdn)) broken("bad fqdn accepted");
    for (const auto& k : vm.cloud_init->ssh_keys)
      if (check_ssh_public_key(k)) broken("bad ssh key accepted", k);
    if (!vm.cloud_init->root_password_hash.empty() && check_password_hash(vm.cloud_init->root_password_hash))
      broken("bad password hash accepted");
  }
  if (check_pool_name(vm.storage_pool)) broken("bad pool accepted", vm.storage_pool);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  if (auto vm = load_vm_yaml(text, "fuzz.yaml"))
    check_valid(*vm);
  else
    check_error(vm.error(), ErrorKind::Validation, "fuzz.yaml");
  if (auto cfg = load_config_yaml(text, "fuzz-config.yaml"); !cfg)
    check_error(cfg.error(), ErrorKind::Config, "fuzz-config.yaml");
  return 0;
}
