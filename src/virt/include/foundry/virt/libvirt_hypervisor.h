// The Hypervisor seam (vm.h) on a real libvirt connection: domains through
// Connection, storage through StorageManager, bridges from the host.
#pragma once

#include <memory>
#include <string>

#include "foundry/common/error.h"
#include "foundry/virt/storage.h"
#include "foundry/virt/vm.h"

namespace foundry::virt {

// Opens `uri` and wraps it. storage_path is where the default pools live.
Result<std::unique_ptr<Hypervisor>> open_libvirt_hypervisor(const std::string& uri, const std::string& storage_path);

// Bridges on this host: interfaces with /sys/class/net/NAME/bridge. Used for
// local URIs; sysfs_root is injectable for tests.
Result<std::vector<std::string>> host_bridges(const std::string& sysfs_root = "/sys/class/net");

}  // namespace foundry::virt
