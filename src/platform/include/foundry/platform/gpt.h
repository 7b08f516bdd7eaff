// GUID Partition Table: layout arithmetic and the exact bytes of the
// protective MBR, the primary and the backup table (UEFI 2.10, chapter 5).
//
// Foundry writes the table itself instead of driving sfdisk: the bytes are a
// pure function of the layout, so they are unit-testable and identical on
// every build host whatever util-linux version it runs. sfdisk and blkid are
// used by the tests to check the result.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "foundry/common/error.h"
#include "foundry/platform/guid.h"

namespace foundry::platform {

inline constexpr uint64_t kSectorSize = 512;
inline constexpr uint64_t kMiB = 1024 * 1024;
// Partitions start on 1 MiB boundaries (what every partitioning tool does;
// it suits 4K-sector disks and SSD erase blocks).
inline constexpr uint64_t kPartitionAlignment = kMiB;
inline constexpr uint32_t kGptEntryCount = 128;
inline constexpr uint32_t kGptEntrySize = 128;
// 128 entries x 128 bytes = 16 KiB = 32 sectors.
inline constexpr uint64_t kGptEntrySectors = kGptEntryCount * kGptEntrySize / kSectorSize;

struct PartitionSpec {
  std::string name;        // GPT partition name (UTF-16 in the table, ASCII here), at most 36 chars
  Guid type;
  Guid guid;               // unique partition GUID
  uint64_t size_bytes = 0; // 0 = take the rest of the disk (only the last partition)
  uint64_t attributes = 0;
};

struct Partition {
  PartitionSpec spec;
  uint64_t first_lba = 0;
  uint64_t last_lba = 0;  // inclusive, as GPT stores it
  uint64_t offset_bytes() const { return first_lba * kSectorSize; }
  uint64_t size_bytes() const { return (last_lba - first_lba + 1) * kSectorSize; }
};

struct GptLayout {
  uint64_t disk_bytes = 0;
  uint64_t disk_sectors = 0;
  uint64_t first_usable_lba = 0;
  uint64_t last_usable_lba = 0;
  Guid disk_guid;
  std::vector<Partition> partitions;
};

// Places the partitions in order, each on a 1 MiB boundary, the last one with
// size 0 growing to the last aligned MiB before the backup table. Fails
// (Validation) when the disk is not a whole number of sectors, when the
// partitions do not fit, or when a name is too long.
Result<GptLayout> plan_gpt_layout(uint64_t disk_bytes, const Guid& disk_guid,
                                  const std::vector<PartitionSpec>& parts);

// The bytes to write at offset 0 (protective MBR, primary header, entries:
// 34 sectors) and at backup_offset (entries then header: 33 sectors).
struct GptImage {
  std::vector<uint8_t> primary;
  std::vector<uint8_t> backup;
  uint64_t backup_offset = 0;
};
GptImage encode_gpt(const GptLayout& layout);

// CRC-32 (IEEE 802.3, reflected, as GPT and zlib use).
uint32_t crc32(const uint8_t* data, size_t len, uint32_t crc = 0);

}  // namespace foundry::platform
