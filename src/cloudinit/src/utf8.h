// UTF-8 helpers shared by the YAML writer and the input checks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace foundry::cloudinit::detail {

// Decodes the UTF-8 sequence at s[i] into cp; returns its length in bytes, or
// 0 when it is not valid UTF-8 (bad lead byte, truncated, overlong, surrogate,
// beyond U+10FFFF).
size_t utf8_decode(std::string_view s, size_t i, uint32_t& cp);

}  // namespace foundry::cloudinit::detail
