// The NoCloud seed ISO, written in-process with libisofs.
//
// The image is ISO 9660 level 3 with Joliet and Rock Ridge, files at the root
// in name order, modes 0644 (files) and 0755 (root), owner 0:0, and every
// timestamp (volume creation/modification/effective dates, directory records,
// Joliet records, Rock Ridge TF fields) set to one given instant, so the same
// files and instant always give the same bytes. Nothing random goes in: no
// UUID, no MD5 tags, no system area.
//
// This machine's kernel has no iso9660 driver; the image is checked by reading
// it back with xorriso, isoinfo and bsdtar (tests/integration/cloudinit).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "foundry/cloudinit/cloudinit.h"
#include "foundry/common/error.h"

namespace foundry::cloudinit {

// One file of an image. (Not "IsoFile": libisofs owns that global name.)
struct IsoEntry {
  std::string name;  // a plain file name at the root: no '/', not "." or ".."
  std::string content;
};

struct IsoOptions {
  std::string volume_id = "cidata";  // cloud-init's NoCloud looks for this label
  // Seconds since 1970-01-01 UTC for every timestamp in the image. ISO 9660
  // directory records hold years 1900-2155, so later instants are refused.
  int64_t timestamp = 0;
};

// Builds the image in memory. Errors carry the libisofs message.
Result<std::vector<uint8_t>> build_iso(std::vector<IsoEntry> files, const IsoOptions& opts = {});

// The NoCloud seed: user-data, meta-data and network-config, volume id
// "cidata", all times set to `timestamp` (SOURCE_DATE_EPOCH, or 0).
Result<std::vector<uint8_t>> build_cloud_init_iso(const Documents& docs, int64_t timestamp = 0);

// Writes an image atomically (temporary file, fsync, rename) with mode 0644.
Status write_iso_file(const std::string& path, const std::vector<uint8_t>& image);

}  // namespace foundry::cloudinit
