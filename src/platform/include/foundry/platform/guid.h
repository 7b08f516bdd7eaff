// GUIDs for disks, partitions and file systems, derived from a seed so that
// the same image inputs give the same identifiers on every build.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "foundry/common/error.h"

namespace foundry::platform {

// A 128-bit identifier kept in RFC 4122 byte order (the order of its text
// form). GPT stores the first three fields little-endian: see to_gpt_bytes.
struct Guid {
  std::array<uint8_t, 16> bytes{};

  // "4f68bce3-e8cd-4db1-96e7-fbcaf984b709" (lower case, as mkfs and blkid print).
  std::string to_string() const;
  // The 16 bytes as they appear in a GPT header or entry (mixed endian).
  std::array<uint8_t, 16> to_gpt_bytes() const;
  bool is_nil() const;
  bool operator==(const Guid&) const = default;
};

// Parses the canonical 36-character text form (either case).
Result<Guid> parse_guid(std::string_view text);

// A name-based identifier: the first 16 bytes of SHA-256(seed || 0 || purpose),
// marked as an RFC 9562 version 8 (vendor-specific) UUID with the RFC 4122
// variant. Different purposes ("disk", "part-root", ...) give unrelated values;
// the same seed and purpose always give the same value.
Guid derive_guid(std::string_view seed, std::string_view purpose);

// A 32-bit FAT volume serial derived the same way (printed as XXXX-XXXX).
uint32_t derive_fat_serial(std::string_view seed, std::string_view purpose);
std::string fat_serial_to_string(uint32_t serial);

// Well-known GPT partition type GUIDs.
namespace gpt_type {
// EFI System Partition (UEFI specification).
inline constexpr std::string_view kEsp = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b";
// Root partition for x86-64 (Discoverable Partitions Specification): lets
// systemd-gpt-auto-generator and tools recognise the root without a label.
inline constexpr std::string_view kLinuxRootX86_64 = "4f68bce3-e8cd-4db1-96e7-fbcaf984b709";
// Generic Linux data.
inline constexpr std::string_view kLinuxData = "0fc63daf-8483-4772-8e79-3d69d8477de4";
// BIOS boot partition (GRUB core image on GPT disks).
inline constexpr std::string_view kBiosBoot = "21686148-6449-6e6f-744e-656564454649";
}  // namespace gpt_type

}  // namespace foundry::platform
