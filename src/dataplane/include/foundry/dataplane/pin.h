// The BPF filesystem where the forwarder's maps are pinned.
#pragma once

#include <string>
#include <vector>

#include "foundry/common/error.h"

namespace foundry::dataplane {

inline constexpr const char* kBpffsMountPoint = "/sys/fs/bpf";

// True when path is on a BPF filesystem (statfs magic BPF_FS_MAGIC).
bool is_bpffs(const std::string& path);

// Mounts a BPF filesystem at mount_point unless one is mounted there
// already; an existing mount is never remounted or changed. Returns true
// when this call mounted it.
Result<bool> ensure_bpffs(const std::string& mount_point = kBpffsMountPoint);

// Creates dir and its parents (mode 0700) and checks that it lies on a BPF
// filesystem: pinning anywhere else fails with a confusing EPERM.
Status prepare_pin_dir(const std::string& dir);

// The names of the pinned objects in dir (empty when dir does not exist).
Result<std::vector<std::string>> list_pinned(const std::string& dir);

// Unlinks every pinned object in dir and dir itself: the one way to throw
// the persisted forwarding state away. A missing dir is not an error.
Status remove_pinned(const std::string& dir);

}  // namespace foundry::dataplane
