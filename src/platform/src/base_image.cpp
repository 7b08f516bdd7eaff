#include "foundry/platform/base_image.h"

#include <sys/stat.h>

#include <filesystem>

#include "fs_util.h"

namespace foundry::platform {

namespace fs = std::filesystem;

Result<BaseImageInfo> build_base_image(BaseImageOptions o) {
  if (o.disk.output.empty()) return fail(ErrorKind::Config, "build base image: no output path given");
  if (!o.rootfs.progress) o.rootfs.progress = o.disk.progress;
  std::error_code ec;
  fs::path out_abs = fs::absolute(o.disk.output, ec);
  std::string parent = o.disk.work_dir.empty() ? out_abs.parent_path().string() : o.disk.work_dir;
  detail::TempDir scratch;
  if (o.rootfs.target.empty()) {
    scratch = FOUNDRY_TRY_CTX(detail::TempDir::create(parent, ".foundry-base-"), "build base image {}",
                              o.disk.output);
    // mkdtemp makes 0700; apt's _apt user must reach the tree inside.
    ::chmod(scratch.path().c_str(), 0755);
    o.rootfs.target = scratch.path() + "/rootfs";
    if (o.keep_rootfs) scratch.keep();
  }
  if (o.rootfs.work_dir.empty()) o.rootfs.work_dir = o.disk.work_dir;
  BaseImageInfo info;
  info.rootfs = FOUNDRY_TRY_CTX(build_rootfs(o.rootfs), "build base image {}", o.disk.output);
  o.disk.rootfs = info.rootfs.path;
  info.disk = FOUNDRY_TRY_CTX(assemble_disk(o.disk), "build base image {}", o.disk.output);
  return info;
}

Result<std::string> describe_base_image_inputs(const BaseImageOptions& o) {
  std::string d = FOUNDRY_TRY(describe_inputs(o.rootfs));
  d += describe_disk_inputs(o.disk);
  return d;
}

}  // namespace foundry::platform
