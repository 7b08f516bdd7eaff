#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>

#include <fmt/format.h>

#include "foundry/cloudinit/cloudinit.h"
#include "foundry/net/ip.h"
#include "utf8.h"

namespace foundry::cloudinit {
namespace {

// Every value that ends up in a document must be text YAML can carry and the
// guest can use: valid UTF-8 and free of control characters. A newline in an
// SSH key would add a second line to authorized_keys, one in the password
// hash would end the chpasswd block; neither is escaped away silently.
// `field()` names the value in the error; it is only called on failure.
template <typename FieldName>
Status check_text(std::string_view value, FieldName&& field) {
  for (size_t i = 0; i < value.size();) {
    auto c = static_cast<unsigned char>(value[i]);
    if (c >= 0x20 && c < 0x7F) {  // printable ASCII, the common case
      ++i;
      continue;
    }
    uint32_t cp = 0;
    size_t n = detail::utf8_decode(value, i, cp);
    if (n == 0)
      return fail(Error(ErrorKind::Validation,
                        fmt::format("{} is not valid UTF-8 (byte {} is 0x{:02x})", field(), i, c))
                      .with_hint("write the value as UTF-8 text"));
    if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp < 0xA0))
      return fail(Error(ErrorKind::Validation,
                        fmt::format("{} contains the control character U+{:04X} at byte {}",
                                    field(), cp, i))
                      .with_hint("remove line breaks and tabs from the value"));
    i += n;
  }
  return ok();
}

Status check_inputs(const config::VmConfig& vm, const config::CloudInit& ci) {
  const std::pair<std::string_view, const char*> fixed[] = {
      {vm.name, "name"},
      {ci.fqdn, "cloud_init.fqdn"},
      {ci.hostname, "cloud_init.hostname"},
      {ci.root_password_hash, "cloud_init.root_password_hash"}};
  for (auto [value, name] : fixed) {
    auto st = check_text(value, [n = name] { return std::string(n); });
    if (!st) return st;
  }
  for (size_t i = 0; i < ci.ssh_keys.size(); ++i) {
    auto st = check_text(ci.ssh_keys[i], [i] { return fmt::format("cloud_init.ssh_keys[{}]", i); });
    if (!st) return st;
  }
  for (size_t i = 0; i < vm.network_interfaces.size(); ++i) {
    const auto& dns = vm.network_interfaces[i].dns_servers;
    for (size_t j = 0; j < dns.size(); ++j) {
      auto st = check_text(
          dns[j], [i, j] { return fmt::format("network_interfaces[{}].dns_servers[{}]", i, j); });
      if (!st) return st;
    }
  }
  return ok();
}

std::string user_data(const config::CloudInit& ci, const std::string& hostname) {
  std::string out = "#cloud-config\n";
  out += "hostname: " + yaml_scalar(hostname) + "\n";
  if (!ci.fqdn.empty()) out += "fqdn: " + yaml_scalar(ci.fqdn) + "\n";
  out += "users:\n";
  out += "  - name: root\n";
  if (!ci.ssh_keys.empty()) {
    out += "    ssh_authorized_keys:\n";
    for (const auto& k : ci.ssh_keys) out += "      - " + yaml_scalar(k) + "\n";
  }
  if (!ci.root_password_hash.empty()) {
    // A literal block keeps '$' and any other character of a crypt hash
    // verbatim; check_text() has ruled out the line breaks that could end it.
    out += "chpasswd:\n";
    out += "  list: |\n";
    out += "    root:" + ci.root_password_hash + "\n";
    out += "  expire: false\n";
  }
  out += fmt::format("ssh_pwauth: {}\n", ci.ssh_pwauth ? "true" : "false");
  return out;
}

std::string network_config(const config::VmConfig& vm, DefaultRouteStyle style) {
  std::string out = "version: 2\n";
  if (vm.network_interfaces.empty()) return out + "ethernets: {}\n";
  out += "ethernets:\n";
  for (size_t i = 0; i < vm.network_interfaces.size(); ++i) {
    const auto& nic = vm.network_interfaces[i];
    out += fmt::format("  eth{}:\n", i);
    out += "    match:\n";
    // Always quoted, as in the seed: an all-digit MAC would be a base-60
    // number to a YAML 1.1 reader.
    out += "      macaddress: " + yaml_quoted(net::derive_mac_from_ip(nic.ip.addr)) + "\n";
    out += "    addresses:\n";
    out += "      - " + yaml_scalar(nic.ip.to_string()) + "\n";
    if (nic.default_route) {
      out += "    routes:\n";
      out += style == DefaultRouteStyle::Keyword ? "      - to: default\n"
                                                 : "      - to: " + yaml_quoted("0.0.0.0/0") + "\n";
      out += "        via: " + yaml_scalar(nic.gateway.to_string()) + "\n";
    }
    if (!nic.dns_servers.empty()) {
      out += "    nameservers:\n";
      out += "      addresses: [";
      for (size_t j = 0; j < nic.dns_servers.size(); ++j) {
        if (j > 0) out += ", ";
        out += yaml_scalar(nic.dns_servers[j]);
      }
      out += "]\n";
    }
  }
  return out;
}

uint64_t fnv1a64(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

}  // namespace

std::string content_id_digits(std::string_view text) {
  return fmt::format("{:010}", fnv1a64(text) % 10000000000ULL);
}

std::string effective_hostname(const config::VmConfig& vm) {
  if (vm.cloud_init) {
    if (!vm.cloud_init->hostname.empty()) return vm.cloud_init->hostname;
    const auto& fqdn = vm.cloud_init->fqdn;
    if (!fqdn.empty()) return fqdn.substr(0, fqdn.find('.'));
  }
  return vm.name;
}

Result<std::optional<int64_t>> source_date_epoch_from_env() {
  const char* v = std::getenv("SOURCE_DATE_EPOCH");
  if (v == nullptr || *v == '\0') return std::optional<int64_t>{};
  std::string_view s(v);
  bool digits = s.size() <= 18 &&
                std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (!digits)
    return fail(Error(ErrorKind::Config,
                      fmt::format("SOURCE_DATE_EPOCH='{}' is not a number of seconds", s))
                    .with_hint("set it to a Unix time such as 1730534400, or unset it"));
  return std::optional<int64_t>{std::strtoll(v, nullptr, 10)};
}

Result<Documents> generate(const config::VmConfig& vm, const GenerateOptions& opts) {
  if (!vm.cloud_init)
    return fail(Error(ErrorKind::Validation,
                      fmt::format("VM '{}' has no cloud_init section, so there is no cloud-init "
                                  "data to generate",
                                  vm.name))
                    .with_hint("add a cloud_init section to the VM file"));
  const auto& ci = *vm.cloud_init;
  if (vm.name.empty()) return fail(ErrorKind::Validation, "the VM has no name");
  if (auto st = check_inputs(vm, ci); !st) return tl::unexpected(st.error());

  const std::string hostname = effective_hostname(vm);
  Documents d;
  d.user_data = user_data(ci, hostname);
  d.network_config = network_config(vm, opts.default_route_style);
  const std::string meta_rest = "local-hostname: " + yaml_scalar(hostname) + "\n";
  if (opts.source_date_epoch) {
    d.instance_id = fmt::format("{}-{}", vm.name, *opts.source_date_epoch);
  } else {
    // Everything the guest sees except the id itself: a changed config gives
    // a new instance-id, so cloud-init treats the VM as new and runs again.
    std::string all;
    all.reserve(d.user_data.size() + meta_rest.size() + d.network_config.size() + 2);
    all += d.user_data;
    all += '\0';
    all += meta_rest;
    all += '\0';
    all += d.network_config;
    d.instance_id = fmt::format("{}-{}", vm.name, content_id_digits(all));
  }
  d.meta_data = "instance-id: " + yaml_scalar(d.instance_id) + "\n" + meta_rest;
  return d;
}

}  // namespace foundry::cloudinit
