// GPT layout arithmetic and on-disk encoding, checked against the UEFI
// specification's field offsets and against known CRC-32 values.
#include "foundry/platform/gpt.h"

#include <cstring>

#include <gtest/gtest.h>

using namespace foundry::platform;

namespace {

uint32_t le32(const std::vector<uint8_t>& b, size_t off) {
  return static_cast<uint32_t>(b[off]) | static_cast<uint32_t>(b[off + 1]) << 8 |
         static_cast<uint32_t>(b[off + 2]) << 16 | static_cast<uint32_t>(b[off + 3]) << 24;
}
uint64_t le64(const std::vector<uint8_t>& b, size_t off) {
  return static_cast<uint64_t>(le32(b, off)) | static_cast<uint64_t>(le32(b, off + 4)) << 32;
}

std::vector<PartitionSpec> esp_and_root(uint64_t esp_bytes) {
  return {
      {"ESP", *parse_guid(gpt_type::kEsp), derive_guid("t", "esp"), esp_bytes, 0},
      {"root", *parse_guid(gpt_type::kLinuxRootX86_64), derive_guid("t", "root"), 0, 0},
  };
}

}  // namespace

TEST(Crc32, MatchesTheStandardCheckValue) {
  // The CRC-32/ISO-HDLC check value of "123456789".
  const char* s = "123456789";
  EXPECT_EQ(crc32(reinterpret_cast<const uint8_t*>(s), 9), 0xCBF43926u);
  EXPECT_EQ(crc32(nullptr, 0), 0u);
}

TEST(GptLayout, AlignsPartitionsToMiBAndFillsTheDisk) {
  const uint64_t disk = 3ull << 30;
  auto l = plan_gpt_layout(disk, derive_guid("t", "disk"), esp_and_root(256 * kMiB));
  ASSERT_TRUE(l) << l.error().to_string();
  EXPECT_EQ(l->disk_sectors, disk / 512);
  EXPECT_EQ(l->first_usable_lba, 34u);
  EXPECT_EQ(l->last_usable_lba, disk / 512 - 34);
  ASSERT_EQ(l->partitions.size(), 2u);
  const auto& esp = l->partitions[0];
  const auto& root = l->partitions[1];
  EXPECT_EQ(esp.first_lba, 2048u);
  EXPECT_EQ(esp.size_bytes(), 256 * kMiB);
  EXPECT_EQ(root.first_lba, 2048u + 256 * 2048);
  EXPECT_EQ(root.first_lba % 2048, 0u);
  // The root ends on the last whole MiB before the 33-sector backup table.
  EXPECT_EQ((root.last_lba + 1) % 2048, 0u);
  EXPECT_LE(root.last_lba, l->last_usable_lba);
  EXPECT_GT(root.last_lba + 2048, l->last_usable_lba);
  EXPECT_EQ(root.offset_bytes(), 257 * kMiB);
}

TEST(GptLayout, OddDiskSizeStillKeepsTheBackupTableFree) {
  const uint64_t disk = (3ull << 30) + 512 * 77;  // not a whole MiB
  auto l = plan_gpt_layout(disk, derive_guid("t", "disk"), esp_and_root(64 * kMiB));
  ASSERT_TRUE(l);
  EXPECT_LE(l->partitions[1].last_lba, l->last_usable_lba);
  EXPECT_EQ((l->partitions[1].last_lba + 1) % 2048, 0u);
}

TEST(GptLayout, RejectsWhatCannotWork) {
  auto g = derive_guid("t", "disk");
  EXPECT_FALSE(plan_gpt_layout(1000, g, esp_and_root(64 * kMiB)));               // not whole sectors
  EXPECT_FALSE(plan_gpt_layout(64 * kMiB, g, esp_and_root(64 * kMiB)));          // ESP alone fills it
  EXPECT_FALSE(plan_gpt_layout(16 * 1024, g, {}));                               // no room for the tables
  auto parts = esp_and_root(64 * kMiB);
  std::swap(parts[0], parts[1]);  // fill-the-rest partition not last
  auto r = plan_gpt_layout(1ull << 30, g, parts);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("only the last partition"), std::string::npos);
  auto named = esp_and_root(64 * kMiB);
  named[1].name = std::string(37, 'x');
  EXPECT_FALSE(plan_gpt_layout(1ull << 30, g, named));
  named[1].name = "r\xc3\xa9";
  EXPECT_FALSE(plan_gpt_layout(1ull << 30, g, named));
  auto odd = esp_and_root(64 * kMiB + 1);
  EXPECT_FALSE(plan_gpt_layout(1ull << 30, g, odd));
}

TEST(GptEncode, HeadersFollowTheSpecification) {
  const uint64_t disk = 1ull << 30;
  auto l = plan_gpt_layout(disk, derive_guid("t", "disk"), esp_and_root(100 * kMiB));
  ASSERT_TRUE(l);
  auto img = encode_gpt(*l);
  ASSERT_EQ(img.primary.size(), 34u * 512);
  ASSERT_EQ(img.backup.size(), 33u * 512);
  const uint64_t last = disk / 512 - 1;
  EXPECT_EQ(img.backup_offset, (last - 32) * 512);

  // Protective MBR.
  EXPECT_EQ(img.primary[510], 0x55);
  EXPECT_EQ(img.primary[511], 0xAA);
  EXPECT_EQ(img.primary[446 + 4], 0xEE);
  EXPECT_EQ(le32(img.primary, 446 + 8), 1u);
  EXPECT_EQ(le32(img.primary, 446 + 12), static_cast<uint32_t>(last));

  // Primary header at LBA 1.
  std::vector<uint8_t> hdr(img.primary.begin() + 512, img.primary.begin() + 1024);
  EXPECT_EQ(std::memcmp(hdr.data(), "EFI PART", 8), 0);
  EXPECT_EQ(le32(hdr, 8), 0x00010000u);
  EXPECT_EQ(le32(hdr, 12), 92u);
  EXPECT_EQ(le64(hdr, 24), 1u);
  EXPECT_EQ(le64(hdr, 32), last);
  EXPECT_EQ(le64(hdr, 40), 34u);
  EXPECT_EQ(le64(hdr, 48), last - 33);
  EXPECT_EQ(le64(hdr, 72), 2u);
  EXPECT_EQ(le32(hdr, 80), 128u);
  EXPECT_EQ(le32(hdr, 84), 128u);
  // Header CRC: over 92 bytes with the field zeroed.
  std::vector<uint8_t> h0(hdr.begin(), hdr.begin() + 92);
  std::memset(&h0[16], 0, 4);
  EXPECT_EQ(le32(hdr, 16), crc32(h0.data(), 92));
  // Entry array CRC.
  EXPECT_EQ(le32(hdr, 88), crc32(img.primary.data() + 1024, 128 * 128));
  // Disk GUID in mixed-endian order.
  auto gb = l->disk_guid.to_gpt_bytes();
  EXPECT_EQ(std::memcmp(&hdr[56], gb.data(), 16), 0);

  // Backup header: swapped my/alternate LBA, entries right before it.
  std::vector<uint8_t> bh(img.backup.end() - 512, img.backup.end());
  EXPECT_EQ(std::memcmp(bh.data(), "EFI PART", 8), 0);
  EXPECT_EQ(le64(bh, 24), last);
  EXPECT_EQ(le64(bh, 32), 1u);
  EXPECT_EQ(le64(bh, 72), last - 32);
  EXPECT_EQ(le32(bh, 88), le32(hdr, 88));
  EXPECT_TRUE(std::equal(img.backup.begin(), img.backup.end() - 512, img.primary.begin() + 1024));

  // First entry: ESP type GUID as stored on disk, LBAs, UTF-16LE name.
  const uint8_t* e = img.primary.data() + 1024;
  const uint8_t esp_type_on_disk[16] = {0x28, 0x73, 0x2A, 0xC1, 0x1F, 0xF8, 0xD2, 0x11,
                                        0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E, 0xC9, 0x3B};
  EXPECT_EQ(std::memcmp(e, esp_type_on_disk, 16), 0);
  std::vector<uint8_t> ev(e, e + 128);
  EXPECT_EQ(le64(ev, 32), 2048u);
  EXPECT_EQ(le64(ev, 40), 2048u + 100 * 2048 - 1);
  EXPECT_EQ(e[56], 'E');
  EXPECT_EQ(e[57], 0);
  EXPECT_EQ(e[58], 'S');
  EXPECT_EQ(e[60], 'P');
  EXPECT_EQ(e[62], 0);
  // Unused entries are zero.
  const uint8_t* third = img.primary.data() + 1024 + 2 * 128;
  for (int i = 0; i < 128; ++i) ASSERT_EQ(third[i], 0);
}

TEST(GptEncode, IsAPureFunctionOfTheLayout) {
  auto a = plan_gpt_layout(1ull << 30, derive_guid("seed", "disk"), esp_and_root(64 * kMiB));
  auto b = plan_gpt_layout(1ull << 30, derive_guid("seed", "disk"), esp_and_root(64 * kMiB));
  ASSERT_TRUE(a && b);
  EXPECT_EQ(encode_gpt(*a).primary, encode_gpt(*b).primary);
  auto c = plan_gpt_layout(1ull << 30, derive_guid("other", "disk"), esp_and_root(64 * kMiB));
  ASSERT_TRUE(c);
  EXPECT_NE(encode_gpt(*a).primary, encode_gpt(*c).primary);
}

TEST(GptEncode, ProtectiveMbrCapsAtTwoTerabytes) {
  const uint64_t disk = 3ull << 40;  // 3 TiB: more sectors than 32 bits hold
  auto l = plan_gpt_layout(disk, derive_guid("t", "disk"), esp_and_root(64 * kMiB));
  ASSERT_TRUE(l);
  auto img = encode_gpt(*l);
  EXPECT_EQ(le32(img.primary, 446 + 12), 0xFFFFFFFFu);
}
