// Scalars for hand-written YAML. The documents are read by PyYAML (YAML 1.1,
// cloud-init), libyaml (netplan) and yaml-cpp (our tests), so a plain scalar
// is only used when all of them read it back as the same string; everything
// else is double-quoted. The rules are deliberately conservative: quoting a
// string that did not need it is harmless, the reverse breaks a guest.
#include <cstdint>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "foundry/cloudinit/cloudinit.h"
#include "utf8.h"

namespace foundry::cloudinit {
namespace {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

// Words YAML 1.1 resolves to booleans or null (and 1.1's "=" and "<<").
bool is_special_word(std::string_view s) {
  static constexpr std::string_view kWords[] = {"y",  "n",   "yes",  "no", "true", "false",
                                                "on", "off", "null", "~",  "=",    "<<"};
  for (auto w : kWords)
    if (iequals(s, w)) return true;
  return false;
}

// True for anything a YAML 1.1 or 1.2 resolver might take for an int, float,
// sexagesimal number or timestamp. Over-approximates: "1-2" is quoted too.
// Dotted quads like 10.55.22.22 are not numbers in either version (a float
// has at most one dot), so they stay plain as the seed shows them.
bool looks_numeric(std::string_view s) {
  std::string_view r = s;
  if (!r.empty() && (r[0] == '+' || r[0] == '-')) r.remove_prefix(1);
  if (r.empty()) return false;
  if (r.size() >= 2 && r[0] == '0' &&
      (r[1] == 'x' || r[1] == 'X' || r[1] == 'o' || r[1] == 'O' || r[1] == 'b' || r[1] == 'B'))
    return true;
  if (iequals(r, ".inf") || iequals(r, ".nan")) return true;
  int digits = 0, dots = 0;
  for (char c : r) {
    if (c >= '0' && c <= '9')
      ++digits;
    else if (c == '.')
      ++dots;
    else if (c != '_' && c != ':' && c != 'e' && c != 'E' && c != '+' && c != '-')
      return false;
  }
  return digits > 0 && dots <= 1;
}

// Characters a YAML reader accepts literally inside a double-quoted scalar
// and does not fold as a line break (PyYAML treats U+0085, U+2028 and U+2029
// as breaks; U+FEFF is a byte order mark).
bool printable_in_quotes(uint32_t cp) {
  if (cp >= 0x20 && cp <= 0x7E) return true;
  if (cp >= 0xA0 && cp <= 0xD7FF) return cp != 0x2028 && cp != 0x2029;
  if (cp >= 0xE000 && cp <= 0xFFFD) return cp != 0xFEFF;
  return cp >= 0x10000 && cp <= 0x10FFFF;
}

}  // namespace

// Decodes one UTF-8 sequence at s[i]; returns its length, or 0 if invalid.
size_t detail::utf8_decode(std::string_view s, size_t i, uint32_t& cp) {
  auto b = [&](size_t k) { return static_cast<uint8_t>(s[i + k]); };
  uint8_t c = b(0);
  size_t n;
  if (c < 0x80) {
    cp = c;
    return 1;
  } else if ((c & 0xE0) == 0xC0) {
    n = 2;
    cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    n = 3;
    cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((b(k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b(k) & 0x3F);
  }
  // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
  static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

std::string yaml_quoted(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out += '"';
  for (size_t i = 0; i < s.size();) {
    uint32_t cp = 0;
    size_t n = detail::utf8_decode(s, i, cp);
    if (n == 0) {
      // Not UTF-8: YAML cannot carry raw bytes, so this writes U+00XX.
      // generate() refuses such input before it gets here.
      out += fmt::format("\\x{:02X}", static_cast<uint8_t>(s[i]));
      ++i;
      continue;
    }
    switch (cp) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\0': out += "\\0"; break;
      case '\a': out += "\\a"; break;
      case '\b': out += "\\b"; break;
      case '\t': out += "\\t"; break;
      case '\n': out += "\\n"; break;
      case '\v': out += "\\v"; break;
      case '\f': out += "\\f"; break;
      case '\r': out += "\\r"; break;
      case 0x1B: out += "\\e"; break;
      case 0x85: out += "\\N"; break;
      case 0x2028: out += "\\L"; break;
      case 0x2029: out += "\\P"; break;
      default:
        if (printable_in_quotes(cp))
          out.append(s.substr(i, n));
        else if (cp < 0x100)
          out += fmt::format("\\x{:02X}", cp);
        else if (cp < 0x10000)
          out += fmt::format("\\u{:04X}", cp);
        else
          out += fmt::format("\\U{:08X}", cp);
    }
    i += n;
  }
  out += '"';
  return out;
}

std::string yaml_scalar(std::string_view s) {
  if (s.empty() || is_special_word(s) || looks_numeric(s)) return yaml_quoted(s);
  // Indicators that start something other than a plain scalar, and a leading
  // space that would be dropped.
  static constexpr std::string_view kBadFirst = "-?:,[]{}#&*!|>'\"%@` ";
  if (kBadFirst.find(s.front()) != std::string_view::npos) return yaml_quoted(s);
  if (s.back() == ' ') return yaml_quoted(s);
  if (s.starts_with("...")) return yaml_quoted(s);
  for (size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    // Non-ASCII goes through yaml_quoted's UTF-8 handling; control
    // characters need escapes.
    if (c < 0x20 || c >= 0x7F) return yaml_quoted(s);
    // ':' ends a key in some contexts and makes sexagesimals in YAML 1.1;
    // flow indicators end a scalar inside [a, b]; " #" starts a comment.
    // yaml-cpp rejects "[a?, b]", so '?' is quoted too.
    if (c == ':' || c == ',' || c == '[' || c == ']' || c == '{' || c == '}' || c == '?')
      return yaml_quoted(s);
    if (c == '#' && i > 0 && s[i - 1] == ' ') return yaml_quoted(s);
  }
  return std::string(s);
}

}  // namespace foundry::cloudinit
