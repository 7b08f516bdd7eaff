// The VM base image in one call: build_rootfs into a scratch directory next
// to the output, assemble_disk from it, remove the scratch tree. What
// `foundry platform base-image` runs and what the e2e fixtures cache.
#pragma once

#include <string>

#include "foundry/common/error.h"
#include "foundry/platform/disk_image.h"
#include "foundry/platform/rootfs.h"

namespace foundry::platform {

struct BaseImageOptions {
  RootfsOptions rootfs;  // target is filled in (a scratch directory) unless set
  DiskOptions disk;      // rootfs is filled in; output must be set
  bool keep_rootfs = false;  // leave the tree at rootfs.target afterwards
};

struct BaseImageInfo {
  RootfsInfo rootfs;
  DiskInfo disk;
};

// Progress of both stages goes to disk.progress (rootfs.progress is
// replaced by it when empty).
Result<BaseImageInfo> build_base_image(BaseImageOptions opts);

// describe_inputs of the tree plus every disk option that changes the image
// bytes: the text a cache stamp hashes.
Result<std::string> describe_base_image_inputs(const BaseImageOptions& opts);

}  // namespace foundry::platform
