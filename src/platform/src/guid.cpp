#include "foundry/platform/guid.h"

#include <sodium.h>

#include <string>

namespace foundry::platform {

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::array<uint8_t, crypto_hash_sha256_BYTES> seed_hash(std::string_view seed, std::string_view purpose) {
  // The NUL separator keeps ("ab", "c") and ("a", "bc") apart.
  std::string msg;
  msg.reserve(seed.size() + 1 + purpose.size());
  msg.append(seed);
  msg.push_back('\0');
  msg.append(purpose);
  std::array<uint8_t, crypto_hash_sha256_BYTES> h{};
  crypto_hash_sha256(h.data(), reinterpret_cast<const unsigned char*>(msg.data()), msg.size());
  return h;
}

}  // namespace

std::string Guid::to_string() const {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  s.reserve(36);
  for (size_t i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s.push_back('-');
    s.push_back(kHex[bytes[i] >> 4]);
    s.push_back(kHex[bytes[i] & 0xf]);
  }
  return s;
}

std::array<uint8_t, 16> Guid::to_gpt_bytes() const {
  // EFI_GUID is {u32, u16, u16, u8[8]} stored little-endian on disk.
  std::array<uint8_t, 16> b{};
  b[0] = bytes[3];
  b[1] = bytes[2];
  b[2] = bytes[1];
  b[3] = bytes[0];
  b[4] = bytes[5];
  b[5] = bytes[4];
  b[6] = bytes[7];
  b[7] = bytes[6];
  for (size_t i = 8; i < 16; ++i) b[i] = bytes[i];
  return b;
}

bool Guid::is_nil() const {
  for (auto b : bytes)
    if (b != 0) return false;
  return true;
}

Result<Guid> parse_guid(std::string_view text) {
  auto bad = [&] {
    return fail(Error(ErrorKind::Validation, fmt::format("'{}' is not a GUID", text))
                    .with_hint("write it as 8-4-4-4-12 hex digits, e.g. 4f68bce3-e8cd-4db1-96e7-fbcaf984b709"));
  };
  if (text.size() != 36) return bad();
  Guid g;
  size_t bi = 0;
  for (size_t i = 0; i < 36;) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (text[i] != '-') return bad();
      ++i;
      continue;
    }
    int hi = hex_value(text[i]);
    int lo = hex_value(text[i + 1]);
    if (hi < 0 || lo < 0) return bad();
    g.bytes[bi++] = static_cast<uint8_t>(hi << 4 | lo);
    i += 2;
  }
  return g;
}

Guid derive_guid(std::string_view seed, std::string_view purpose) {
  auto h = seed_hash(seed, purpose);
  Guid g;
  for (size_t i = 0; i < 16; ++i) g.bytes[i] = h[i];
  g.bytes[6] = static_cast<uint8_t>((g.bytes[6] & 0x0f) | 0x80);  // version 8
  g.bytes[8] = static_cast<uint8_t>((g.bytes[8] & 0x3f) | 0x80);  // RFC 4122 variant
  return g;
}

uint32_t derive_fat_serial(std::string_view seed, std::string_view purpose) {
  auto h = seed_hash(seed, purpose);
  return static_cast<uint32_t>(h[0]) << 24 | static_cast<uint32_t>(h[1]) << 16 |
         static_cast<uint32_t>(h[2]) << 8 | static_cast<uint32_t>(h[3]);
}

std::string fat_serial_to_string(uint32_t serial) {
  return fmt::format("{:04X}-{:04X}", serial >> 16, serial & 0xffff);
}

}  // namespace foundry::platform
