#include "foundry/virt/libvirt_hypervisor.h"

#include <libvirt/libvirt.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>

namespace foundry::virt {

LibvirtHypervisor::LibvirtHypervisor(Connection conn, StorageConfig cfg)
    : conn_(std::make_unique<Connection>(std::move(conn))), storage_(*conn_, std::move(cfg)) {}

Result<bool> LibvirtHypervisor::domain_exists(const std::string& name) {
  auto d = FOUNDRY_TRY(conn_->find_domain(name));
  return d.has_value();
}

Result<DomainFacts> LibvirtHypervisor::domain_info(const std::string& name) {
  auto d = FOUNDRY_TRY(get_domain(name));
  return facts(d);
}

Result<std::vector<DomainFacts>> LibvirtHypervisor::list_domains(bool include_inactive) {
  auto doms = FOUNDRY_TRY(conn_->domains(include_inactive));
  std::vector<DomainFacts> out;
  for (auto& d : doms) out.push_back(FOUNDRY_TRY(facts(d)));
  return out;
}

Status LibvirtHypervisor::define_domain(const std::string& xml) {
  FOUNDRY_TRY(conn_->define_domain(xml));
  return ok();
}
Status LibvirtHypervisor::undefine_domain(const std::string& name) {
  auto d = FOUNDRY_TRY(get_domain(name));
  return d.undefine();
}
Status LibvirtHypervisor::set_autostart(const std::string& name, bool on) {
  auto d = FOUNDRY_TRY(get_domain(name));
  return d.set_autostart(on);
}
Status LibvirtHypervisor::start_domain(const std::string& name) {
  auto d = FOUNDRY_TRY(get_domain(name));
  return d.start();
}
Status LibvirtHypervisor::shutdown_domain(const std::string& name) {
  auto d = FOUNDRY_TRY(get_domain(name));
  return d.shutdown();
}
Status LibvirtHypervisor::destroy_domain(const std::string& name) {
  auto d = FOUNDRY_TRY(get_domain(name));
  if (!FOUNDRY_TRY(d.is_active())) return ok();
  return d.destroy();
}

Result<bool> LibvirtHypervisor::pool_exists(const std::string& pool) {
  auto p = FOUNDRY_TRY(conn_->find_pool(pool));
  return p.has_value();
}
Result<bool> LibvirtHypervisor::ensure_pool(const std::string& pool) {
  bool existed = FOUNDRY_TRY(pool_exists(pool));
  FOUNDRY_TRY(storage_.ensure_pool(pool));
  return !existed;
}
Status LibvirtHypervisor::delete_empty_pool(const std::string& pool) {
  auto p = FOUNDRY_TRY(conn_->find_pool(pool));
  if (!p) return ok();
  if (FOUNDRY_TRY(p->is_active())) {
    if (!FOUNDRY_TRY(p->volumes()).empty()) return ok();  // someone else's volumes: keep it
    FOUNDRY_TRY(p->stop());
  }
  (void)p->delete_storage();  // best effort: dir pools remove their directory
  return p->undefine();
}
Result<std::optional<VolumeDetails>> LibvirtHypervisor::find_volume(const std::string& pool, const std::string& name) {
  auto v = FOUNDRY_TRY(storage_.find_volume(pool, name));
  if (!v) return std::optional<VolumeDetails>{};
  return std::optional<VolumeDetails>{FOUNDRY_TRY(v->details())};
}
Result<std::optional<VolumeDetails>> LibvirtHypervisor::find_volume_by_path(const std::string& path) {
  auto v = FOUNDRY_TRY(conn_->find_volume_by_path(path));
  if (!v) return std::optional<VolumeDetails>{};
  return std::optional<VolumeDetails>{FOUNDRY_TRY(v->details())};
}
Status LibvirtHypervisor::create_volume(const std::string& pool, const VolumeSpec& spec) {
  FOUNDRY_TRY(storage_.create_volume(pool, spec));
  return ok();
}
Status LibvirtHypervisor::create_volume_from_bytes(const std::string& pool, const std::string& name,
                                                   const std::string& bytes) {
  FOUNDRY_TRY(storage_.create_from_bytes(pool, name, bytes));
  return ok();
}
Status LibvirtHypervisor::delete_volume(const std::string& pool, const std::string& name) {
  FOUNDRY_TRY(storage_.delete_volume(pool, name));
  return ok();
}
Result<std::vector<std::string>> LibvirtHypervisor::list_bridges() { return host_bridges(); }

Result<Domain> LibvirtHypervisor::get_domain(const std::string& name) {
  auto d = FOUNDRY_TRY(conn_->find_domain(name));
  if (!d) return fail(Error(ErrorKind::Operation, fmt::format("domain '{}' not found", name)).with_errno(ENOENT));
  return std::move(*d);
}
Result<DomainFacts> LibvirtHypervisor::facts(const Domain& d) {
  DomainFacts f;
  f.name = d.name();
  f.uuid = d.uuid();
  auto info = FOUNDRY_TRY(d.info());
  f.state = info.state;
  f.vcpus = info.vcpus;
  f.memory_kib = info.max_memory_kib;
  f.autostart = FOUNDRY_TRY(d.autostart());
  f.xml = FOUNDRY_TRY(d.xml(VIR_DOMAIN_XML_INACTIVE));
  return f;
}

Result<std::vector<std::string>> host_bridges(const std::string& sysfs_root) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(sysfs_root, ec)) {
    if (std::filesystem::exists(e.path() / "bridge", ec)) out.push_back(e.path().filename().string());
  }
  if (ec) return fail(Error(ErrorKind::Operation, "cannot list bridges in " + sysfs_root).with_errno(ec.value()));
  std::sort(out.begin(), out.end());
  return out;
}

Result<std::unique_ptr<LibvirtHypervisor>> open_libvirt_hypervisor(const std::string& uri, const std::string& storage_path) {
  auto conn = FOUNDRY_TRY(Connection::open(uri));
  StorageConfig cfg;
  if (!storage_path.empty()) cfg.base_path = storage_path;
  return std::make_unique<LibvirtHypervisor>(std::move(conn), std::move(cfg));
}

Result<std::unique_ptr<LibvirtHypervisor>> open_libvirt_hypervisor(const std::string& uri, StorageConfig cfg) {
  auto conn = FOUNDRY_TRY(Connection::open(uri));
  return std::make_unique<LibvirtHypervisor>(std::move(conn), std::move(cfg));
}

}  // namespace foundry::virt
