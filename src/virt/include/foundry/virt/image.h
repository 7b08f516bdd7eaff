// Base images (seed 001, "Image Format Validation"): volumes in the image
// pool that VM boot disks use as their qcow2 backing store.
//
// Rules on import and pull:
//   * the format is detected from magic bytes: qcow2 = "QFI\xfb" at offset 0,
//     raw = an MBR/GPT-protective boot signature 0x55 0xAA at offset 510;
//     anything else (including raw data without the signature) is refused;
//   * the image name must end in .qcow2 or .raw, matching the detected format
//     (e.g. debian-12.qcow2); a source file named *.qcow2 / *.raw must match
//     too (a misnamed file is a mistake worth stopping for);
//   * a qcow2 that itself has a backing file is refused (it would point at a
//     path on the machine it came from).
// Violations are ErrorKind::Validation (exit 2).
//
// Names without the extension still find an image: resolve("debian-12")
// finds debian-12.qcow2 (or .raw), so VM files can say `image: debian-12`.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "foundry/common/error.h"
#include "foundry/virt/storage.h"

namespace foundry::virt {

enum class ImageFormat { Qcow2, Raw };
std::string_view to_string(ImageFormat f);
VolumeFormat to_volume_format(ImageFormat f);

struct ImageProbe {
  ImageFormat format = ImageFormat::Raw;
  uint64_t file_size = 0;
  uint64_t virtual_size = 0;  // qcow2: from the header; raw: the file size
  bool has_backing_file = false;
};

// Detects the format from the first bytes of an image (at least 512 are
// needed for raw). `what` names the source in messages.
Result<ImageProbe> probe_image_header(std::string_view header, uint64_t file_size, const std::string& what);
// Same for an open file (reads with pread; the offset is not moved).
Result<ImageProbe> probe_image_fd(int fd, const std::string& what);

// The format an image or file name claims by its extension, if any.
std::optional<ImageFormat> format_from_extension(std::string_view name);
// Image name rules (characters, extension, match with the detected format).
Status check_image_name(std::string_view name, ImageFormat detected);
// A source file or URL whose own name ends in .qcow2/.raw must match too.
Status check_source_name(std::string_view source, ImageFormat detected);

// "sha256:<64 hex digits>" (the prefix is required); returns the lowercase hex.
Result<std::string> parse_checksum(std::string_view s);

struct ImageUser {
  std::string pool;
  std::string volume;
  std::string vm;  // from the volume naming convention; "" when unknown
};

struct ImageInfo {
  std::string name;
  std::string pool;
  std::string path;
  ImageFormat format = ImageFormat::Raw;  // from the name's extension, checked at import
  std::string libvirt_format;             // what libvirt reports for the volume
  uint64_t capacity = 0;
  uint64_t allocation = 0;
  std::vector<ImageUser> users;  // volumes in any pool backed by this image
};

// Progress of import/pull: phase ("download", "upload"), bytes done, total (0 = unknown).
using PhaseProgressFn = std::function<void(std::string_view phase, uint64_t done, uint64_t total)>;

struct PullOptions {
  std::optional<std::string> sha256;  // lowercase hex from parse_checksum
  std::string temp_dir;               // "" = $TMPDIR or /var/tmp
};

class ImageStore {
 public:
  explicit ImageStore(StorageManager& storage) : storage_(storage) {}

  // Checks the file and uploads it into the image pool (created on first
  // use) under `name`; if `name` is empty, the file's base name.
  Result<ImageInfo> import_file(const std::string& path, std::string name, const PhaseProgressFn& progress = {});
  // Downloads an http, https or file URL to an unlinked temporary file,
  // verifies the checksum and the format, then uploads like import_file.
  // Nothing is left in the pool when any check fails.
  Result<ImageInfo> pull(const std::string& url, std::string name, const PullOptions& opts = {},
                         const PhaseProgressFn& progress = {});

  Result<std::vector<ImageInfo>> list();
  Result<ImageInfo> info(const std::string& name);
  // The image volume for a name with or without its extension.
  Result<Volume> resolve(const std::string& name);
  // Refuses while any volume is backed by the image, unless force.
  Status remove(const std::string& name, bool force);

 private:
  Result<ImageInfo> describe(const Volume& vol);
  Result<ImageInfo> upload_checked(int fd, const std::string& source, const std::string& name,
                                   const PhaseProgressFn& progress);

  StorageManager& storage_;
};

}  // namespace foundry::virt
