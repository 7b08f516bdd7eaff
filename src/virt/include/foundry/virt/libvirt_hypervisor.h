// The Hypervisor seam (vm.h) on a real libvirt connection: domains through
// Connection, storage through StorageManager, bridges from the host.
#pragma once

#include <memory>
#include <string>

#include "foundry/common/error.h"
#include "foundry/virt/storage.h"
#include "foundry/virt/vm.h"

namespace foundry::virt {

class LibvirtHypervisor final : public Hypervisor {
 public:
  LibvirtHypervisor(Connection conn, StorageConfig cfg);

  // The storage layer, e.g. to swap the volume uploader in tests (libvirt's
  // test driver has no virStorageVolUpload).
  StorageManager& storage() { return storage_; }
  Connection& connection() { return *conn_; }

  Result<bool> domain_exists(const std::string& name) override;
  Result<DomainFacts> domain_info(const std::string& name) override;
  Result<std::vector<DomainFacts>> list_domains(bool include_inactive) override;
  Status define_domain(const std::string& xml) override;
  Status undefine_domain(const std::string& name) override;
  Status set_autostart(const std::string& name, bool on) override;
  Status start_domain(const std::string& name) override;
  Status shutdown_domain(const std::string& name) override;
  Status destroy_domain(const std::string& name) override;
  Result<bool> pool_exists(const std::string& pool) override;
  Result<bool> ensure_pool(const std::string& pool) override;
  Status delete_empty_pool(const std::string& pool) override;
  Result<std::optional<VolumeDetails>> find_volume(const std::string& pool, const std::string& name) override;
  Result<std::optional<VolumeDetails>> find_volume_by_path(const std::string& path) override;
  Status create_volume(const std::string& pool, const VolumeSpec& spec) override;
  Status create_volume_from_bytes(const std::string& pool, const std::string& name,
                                  const std::string& bytes) override;
  Status delete_volume(const std::string& pool, const std::string& name) override;
  Result<std::vector<std::string>> list_bridges() override;

 private:
  Result<Domain> get_domain(const std::string& name);
  Result<DomainFacts> facts(const Domain& d);

  std::unique_ptr<Connection> conn_;
  StorageManager storage_;
};

// Opens `uri` and wraps it. storage_path is where the default pools live.
Result<std::unique_ptr<LibvirtHypervisor>> open_libvirt_hypervisor(const std::string& uri, const std::string& storage_path);
// Same, with the default pools' names and base path: a VM pool or image pool
// named here is created on first use like foundry-vms / foundry-images.
Result<std::unique_ptr<LibvirtHypervisor>> open_libvirt_hypervisor(const std::string& uri, StorageConfig cfg);

// Bridges on this host: interfaces with /sys/class/net/NAME/bridge. Used for
// local URIs; sysfs_root is injectable for tests.
Result<std::vector<std::string>> host_bridges(const std::string& sysfs_root = "/sys/class/net");

}  // namespace foundry::virt
