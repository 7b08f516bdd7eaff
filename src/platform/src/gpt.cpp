#include "foundry/platform/gpt.h"

#include <array>
#include <cstring>

namespace foundry::platform {

namespace {

constexpr std::array<uint32_t, 256> make_crc_table() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    t[i] = c;
  }
  return t;
}
constexpr auto kCrcTable = make_crc_table();

void put_le16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
}
void put_le32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
void put_le64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
void put_guid(uint8_t* p, const Guid& g) {
  auto b = g.to_gpt_bytes();
  std::memcpy(p, b.data(), b.size());
}

uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }
uint64_t align_down(uint64_t v, uint64_t a) { return v / a * a; }

// The 92-byte header in a 512-byte sector; its CRC covers the 92 bytes with
// the CRC field itself zero.
std::vector<uint8_t> encode_header(const GptLayout& l, uint64_t my_lba, uint64_t alternate_lba,
                                   uint64_t entries_lba, uint32_t entries_crc) {
  std::vector<uint8_t> s(kSectorSize, 0);
  std::memcpy(s.data(), "EFI PART", 8);
  put_le32(&s[8], 0x00010000);  // revision 1.0
  put_le32(&s[12], 92);         // header size
  put_le64(&s[24], my_lba);
  put_le64(&s[32], alternate_lba);
  put_le64(&s[40], l.first_usable_lba);
  put_le64(&s[48], l.last_usable_lba);
  put_guid(&s[56], l.disk_guid);
  put_le64(&s[72], entries_lba);
  put_le32(&s[80], kGptEntryCount);
  put_le32(&s[84], kGptEntrySize);
  put_le32(&s[88], entries_crc);
  put_le32(&s[16], crc32(s.data(), 92));
  return s;
}

}  // namespace

uint32_t crc32(const uint8_t* data, size_t len, uint32_t crc) {
  crc = ~crc;
  for (size_t i = 0; i < len; ++i) crc = kCrcTable[(crc ^ data[i]) & 0xff] ^ (crc >> 8);
  return ~crc;
}

Result<GptLayout> plan_gpt_layout(uint64_t disk_bytes, const Guid& disk_guid,
                                  const std::vector<PartitionSpec>& parts) {
  if (disk_bytes % kSectorSize != 0)
    return fail(ErrorKind::Validation, "disk size {} is not a multiple of {} bytes", disk_bytes, kSectorSize);
  GptLayout l;
  l.disk_bytes = disk_bytes;
  l.disk_sectors = disk_bytes / kSectorSize;
  l.disk_guid = disk_guid;
  // LBA 0 protective MBR, LBA 1 header, then the entry array; the backup
  // array and header take the last 33 sectors.
  if (l.disk_sectors < 2 * (kGptEntrySectors + 1) + 1 + 2 * kPartitionAlignment / kSectorSize)
    return fail(ErrorKind::Validation, "disk of {} bytes is too small for a GPT", disk_bytes);
  l.first_usable_lba = 2 + kGptEntrySectors;
  l.last_usable_lba = l.disk_sectors - 2 - kGptEntrySectors;
  if (parts.size() > kGptEntryCount)
    return fail(ErrorKind::Validation, "{} partitions do not fit in a GPT of {} entries", parts.size(), kGptEntryCount);

  const uint64_t align = kPartitionAlignment / kSectorSize;
  uint64_t next = align_up(l.first_usable_lba, align);
  // Aligned end: the last whole MiB that ends before the backup table.
  const uint64_t usable_end = align_down(l.last_usable_lba + 1, align);  // exclusive
  for (size_t i = 0; i < parts.size(); ++i) {
    const auto& p = parts[i];
    if (p.name.size() > 36)
      return fail(ErrorKind::Validation, "partition name '{}' is longer than 36 characters", p.name);
    for (char c : p.name)
      if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e)
        return fail(ErrorKind::Validation, "partition name '{}' must be printable ASCII", p.name);
    if (p.size_bytes % kSectorSize != 0)
      return fail(ErrorKind::Validation, "partition {} size {} is not a multiple of {} bytes", p.name, p.size_bytes,
                  kSectorSize);
    if (p.size_bytes == 0 && i + 1 != parts.size())
      return fail(ErrorKind::Validation, "only the last partition may fill the rest of the disk ({} is not last)",
                  p.name);
    uint64_t sectors = p.size_bytes / kSectorSize;
    uint64_t end = p.size_bytes == 0 ? usable_end : next + sectors;  // exclusive
    if (end <= next || end > usable_end)
      return fail(Error(ErrorKind::Validation,
                        fmt::format("partition {} ({} bytes) does not fit on a disk of {} bytes", p.name,
                                    p.size_bytes, disk_bytes))
                      .with_hint("make the disk larger"));
    l.partitions.push_back(Partition{p, next, end - 1});
    next = align_up(end, align);
  }
  return l;
}

GptImage encode_gpt(const GptLayout& l) {
  // Entry array, shared by both copies.
  std::vector<uint8_t> entries(kGptEntryCount * kGptEntrySize, 0);
  for (size_t i = 0; i < l.partitions.size(); ++i) {
    const auto& p = l.partitions[i];
    uint8_t* e = &entries[i * kGptEntrySize];
    put_guid(e, p.spec.type);
    put_guid(e + 16, p.spec.guid);
    put_le64(e + 32, p.first_lba);
    put_le64(e + 40, p.last_lba);
    put_le64(e + 48, p.spec.attributes);
    for (size_t c = 0; c < p.spec.name.size(); ++c)
      put_le16(e + 56 + 2 * c, static_cast<uint16_t>(static_cast<unsigned char>(p.spec.name[c])));
  }
  uint32_t entries_crc = crc32(entries.data(), entries.size());
  const uint64_t last_lba = l.disk_sectors - 1;
  const uint64_t backup_entries_lba = last_lba - kGptEntrySectors;

  GptImage img;
  // Protective MBR: one partition of type 0xEE covering the disk (capped at
  // 32 bits), so MBR-only tools see the disk as in use.
  std::vector<uint8_t> mbr(kSectorSize, 0);
  uint8_t* pe = &mbr[446];
  pe[0] = 0x00;                       // not bootable
  pe[1] = 0x00; pe[2] = 0x02; pe[3] = 0x00;  // CHS of LBA 1
  pe[4] = 0xEE;
  pe[5] = 0xFF; pe[6] = 0xFF; pe[7] = 0xFF;  // CHS beyond reach
  put_le32(pe + 8, 1);
  uint64_t mbr_size = l.disk_sectors - 1;
  put_le32(pe + 12, mbr_size > 0xFFFFFFFFu ? 0xFFFFFFFFu : static_cast<uint32_t>(mbr_size));
  mbr[510] = 0x55;
  mbr[511] = 0xAA;

  auto primary_header = encode_header(l, 1, last_lba, 2, entries_crc);
  auto backup_header = encode_header(l, last_lba, 1, backup_entries_lba, entries_crc);

  img.primary.reserve(kSectorSize * (2 + kGptEntrySectors));
  img.primary.insert(img.primary.end(), mbr.begin(), mbr.end());
  img.primary.insert(img.primary.end(), primary_header.begin(), primary_header.end());
  img.primary.insert(img.primary.end(), entries.begin(), entries.end());

  img.backup.reserve(kSectorSize * (1 + kGptEntrySectors));
  img.backup.insert(img.backup.end(), entries.begin(), entries.end());
  img.backup.insert(img.backup.end(), backup_header.begin(), backup_header.end());
  img.backup_offset = backup_entries_lba * kSectorSize;
  return img;
}

}  // namespace foundry::platform
