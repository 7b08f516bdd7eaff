#include "foundry/config/rules.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <vector>

#include <fmt/format.h>

namespace foundry::config {

namespace {

RuleViolation violation(std::string message, std::string hint = {}) {
  return RuleViolation{std::move(message), std::move(hint)};
}

bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

// Quotes a user value for a message, cut short so that a pasted blob does
// not drown the message.
std::string shown(std::string_view s) {
  constexpr size_t kMax = 40;
  if (s.size() <= kMax) return fmt::format("\"{}\"", s);
  return fmt::format("\"{}...\"", s.substr(0, kMax));
}

}  // namespace

RuleCheck check_vm_name(std::string_view n) {
  constexpr std::string_view kHint =
      "use lowercase letters, digits, '-' and '_', starting and ending with a letter or digit, e.g. web-01";
  if (n.empty()) return violation("name is empty", std::string(kHint));
  if (n.size() < 2)
    return violation(fmt::format("name {} is too short: names have at least 2 characters", shown(n)),
                     std::string(kHint));
  if (n.size() > 63)
    return violation(fmt::format("name is {} characters long; at most 63 are allowed", n.size()),
                     "the name becomes the guest's host name and part of volume names; shorten it");
  for (size_t i = 0; i < n.size(); ++i) {
    char c = n[i];
    if (is_lower_alnum(c)) continue;
    if ((c == '-' || c == '_') && i != 0 && i + 1 != n.size()) continue;
    if (c == '-' || c == '_')
      return violation(fmt::format("name {} must start and end with a letter or digit", shown(n)),
                       std::string(kHint));
    if (c == '.')
      return violation(fmt::format("name {} contains '.'", shown(n)),
                       "a VM name is a single word; put the domain in cloud_init.fqdn");
    return violation(fmt::format("name {} contains '{}' at position {}", shown(n),
                                 static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f
                                     ? fmt::format("\\x{:02x}", static_cast<unsigned char>(c))
                                     : std::string(1, c),
                                 i + 1),
                     std::string(kHint));
  }
  return std::nullopt;
}

RuleCheck check_fqdn(std::string_view f) {
  if (f.empty()) return violation("fqdn is empty", "write a host name with its domain, e.g. web-01.example.com");
  if (f.size() > 253)
    return violation(fmt::format("fqdn is {} characters long; DNS names have at most 253", f.size()));
  if (f.back() == '.')
    return violation(fmt::format("fqdn {} ends with '.'", shown(f)),
                     fmt::format("write it without the trailing dot: {}", f.substr(0, f.size() - 1)));
  if (f.find('.') == std::string_view::npos)
    return violation(fmt::format("fqdn {} has no domain", shown(f)),
                     fmt::format("a fully qualified name has a host and a domain, e.g. {}.example.com", f));
  size_t start = 0;
  std::string_view last;
  for (;;) {
    size_t dot = f.find('.', start);
    std::string_view label = f.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (label.empty())
      return violation(fmt::format("fqdn {} has an empty label (two dots in a row or a leading dot)", shown(f)));
    if (label.size() > 63)
      return violation(fmt::format("fqdn label \"{}...\" is {} characters long; at most 63 are allowed",
                                   label.substr(0, 20), label.size()));
    if (label.front() == '-' || label.back() == '-')
      return violation(fmt::format("fqdn label \"{}\" starts or ends with '-'", label),
                       "labels start and end with a letter or digit");
    for (char c : label) {
      if (is_lower_alnum(c) || c == '-') continue;
      if (c == '_')
        return violation(fmt::format("fqdn {} contains '_'", shown(f)),
                         "host names allow letters, digits and '-' only; replace '_' with '-'");
      return violation(fmt::format("fqdn {} contains '{}'", shown(f),
                                   static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f
                                       ? fmt::format("\\x{:02x}", static_cast<unsigned char>(c))
                                       : std::string(1, c)),
                       "host names allow letters, digits and '-' only");
    }
    last = label;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  if (std::all_of(last.begin(), last.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return violation(fmt::format("fqdn {} ends in a numeric label (an IP address is not an fqdn)", shown(f)),
                     "write a name such as web-01.example.com");
  return std::nullopt;
}

// ---------------------------------------------------------------------------
// SSH public keys

namespace {

constexpr std::array<std::string_view, 7> kSshKeyTypes = {
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
};

int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// Strict RFC 4648 base64 with padding, as ssh-keygen writes it.
std::optional<std::vector<uint8_t>> base64_decode(std::string_view s) {
  if (s.empty() || s.size() % 4 != 0) return std::nullopt;
  size_t pad = 0;
  if (s.back() == '=') ++pad;
  if (s.size() >= 2 && s[s.size() - 2] == '=') ++pad;
  std::vector<uint8_t> out;
  out.reserve(s.size() / 4 * 3);
  for (size_t i = 0; i < s.size(); i += 4) {
    uint32_t v = 0;
    for (size_t j = 0; j < 4; ++j) {
      char c = s[i + j];
      int d;
      if (c == '=' && i + j >= s.size() - pad) d = 0;
      else if ((d = base64_value(c)) < 0) return std::nullopt;
      v = (v << 6) | static_cast<uint32_t>(d);
    }
    out.push_back(static_cast<uint8_t>(v >> 16));
    out.push_back(static_cast<uint8_t>(v >> 8));
    out.push_back(static_cast<uint8_t>(v));
  }
  out.resize(out.size() - pad);
  return out;
}

// Reader of the SSH wire format (RFC 4251 "string": uint32 length + bytes).
class WireReader {
 public:
  explicit WireReader(const std::vector<uint8_t>& b) : b_(b) {}
  std::optional<std::string_view> string() {
    if (b_.size() - pos_ < 4) return std::nullopt;
    uint32_t n = (uint32_t{b_[pos_]} << 24) | (uint32_t{b_[pos_ + 1]} << 16) | (uint32_t{b_[pos_ + 2]} << 8) |
                 uint32_t{b_[pos_ + 3]};
    pos_ += 4;
    if (b_.size() - pos_ < n) return std::nullopt;
    std::string_view s(reinterpret_cast<const char*>(b_.data() + pos_), n);
    pos_ += n;
    return s;
  }
  bool at_end() const { return pos_ == b_.size(); }

 private:
  const std::vector<uint8_t>& b_;
  size_t pos_ = 0;
};

size_t mpint_bits(std::string_view m) {
  size_t i = 0;
  while (i < m.size() && m[i] == 0) ++i;
  if (i == m.size()) return 0;
  auto first = static_cast<unsigned char>(m[i]);
  size_t bits = (m.size() - i - 1) * 8;
  while (first) {
    ++bits;
    first >>= 1;
  }
  return bits;
}

constexpr std::string_view kCopyHint = "copy the whole line of the .pub file (ssh-keygen -y -f KEY prints it)";

RuleCheck check_key_blob(std::string_view type, const std::vector<uint8_t>& blob) {
  WireReader r(blob);
  auto embedded = r.string();
  if (!embedded || embedded->empty() ||
      !std::all_of(embedded->begin(), embedded->end(), [](char c) { return c > 0x20 && c < 0x7f; }))
    return violation("the key data does not start with a key type: this is not an SSH public key",
                     std::string(kCopyHint));
  if (*embedded != type)
    return violation(fmt::format("the key data is of type {} but the line says {}", *embedded, type),
                     fmt::format("start the line with {}", *embedded));
  auto truncated = [&] {
    return violation(fmt::format("the {} key data is truncated or damaged", type), std::string(kCopyHint));
  };
  if (type == "ssh-rsa") {
    auto e = r.string();
    auto n = e ? r.string() : std::nullopt;
    if (!n) return truncated();
    if (!r.at_end()) return truncated();
    size_t bits = mpint_bits(*n);
    if (bits < 1024)
      return violation(fmt::format("the RSA key has {} bits; OpenSSH refuses RSA keys under 1024 bits", bits),
                       "generate a new key: ssh-keygen -t ed25519");
    return std::nullopt;
  }
  if (type == "ssh-ed25519" || type == "sk-ssh-ed25519@openssh.com") {
    auto pk = r.string();
    if (!pk || pk->size() != 32) return truncated();
    if (type.starts_with("sk-") && !r.string()) return truncated();
    if (!r.at_end()) return truncated();
    return std::nullopt;
  }
  // ecdsa-sha2-<curve> and sk-ecdsa-sha2-nistp256@openssh.com: curve name,
  // then the uncompressed point 0x04 || X || Y.
  std::string_view curve = type.starts_with("sk-") ? std::string_view("nistp256") : type.substr(11);
  size_t point = curve == "nistp256" ? 65 : curve == "nistp384" ? 97 : 133;
  auto c = r.string();
  if (!c) return truncated();
  if (*c != curve)
    return violation(fmt::format("the {} key data names curve \"{}\"", type, *c), std::string(kCopyHint));
  auto q = r.string();
  if (!q || q->size() != point || static_cast<unsigned char>((*q)[0]) != 0x04) return truncated();
  if (type.starts_with("sk-") && !r.string()) return truncated();
  if (!r.at_end()) return truncated();
  return std::nullopt;
}

}  // namespace

RuleCheck check_ssh_public_key(std::string_view line) {
  while (!line.empty() && is_space(line.front())) line.remove_prefix(1);
  while (!line.empty() && is_space(line.back())) line.remove_suffix(1);
  if (line.empty()) return violation("the SSH key is empty", std::string(kCopyHint));
  if (line.starts_with("-----BEGIN"))
    return violation(line.find("PRIVATE") != std::string_view::npos
                         ? "this is a PRIVATE key; never put it in a VM file"
                         : "this is a PEM key, not an OpenSSH public key",
                     "use the public key: the .pub file, or ssh-keygen -y -f KEY");
  if (line.find('\n') != std::string_view::npos || line.find('\r') != std::string_view::npos)
    return violation("the SSH key spans several lines; a public key is one line",
                     "quote it on one line, or use a plain YAML list item without folding");
  size_t sp = 0;
  while (sp < line.size() && !is_space(line[sp])) ++sp;
  std::string_view type = line.substr(0, sp);
  std::string_view rest = line.substr(sp);
  while (!rest.empty() && is_space(rest.front())) rest.remove_prefix(1);
  size_t bend = 0;
  while (bend < rest.size() && !is_space(rest[bend])) ++bend;
  std::string_view blob = rest.substr(0, bend);

  bool known = std::find(kSshKeyTypes.begin(), kSshKeyTypes.end(), type) != kSshKeyTypes.end();
  if (!known) {
    if (type == "ssh-dss")
      return violation("DSA keys (ssh-dss) are not accepted: OpenSSH disabled them in 7.0",
                       "generate a new key: ssh-keygen -t ed25519");
    if (type.starts_with("AAAA"))
      return violation("the SSH key has no type before the key data",
                       "start the line with the key type, e.g. ssh-ed25519 AAAA...");
    auto near = closest_match(type, kSshKeyTypes);
    std::string all;
    for (auto t : kSshKeyTypes) all += (all.empty() ? "" : ", ") + std::string(t);
    return violation(fmt::format("unknown SSH key type {}", shown(type)),
                     near ? fmt::format("did you mean {}?", *near) : fmt::format("key types: {}", all));
  }
  if (blob.empty()) return violation(fmt::format("the {} key has no key data", type), std::string(kCopyHint));
  auto decoded = base64_decode(blob);
  if (!decoded)
    return violation(fmt::format("the {} key data is not valid base64{}", type,
                                 blob.size() % 4 != 0 ? " (its length is not a multiple of 4: truncated?)" : ""),
                     std::string(kCopyHint));
  return check_key_blob(type, *decoded);
}

RuleCheck check_password_hash(std::string_view h) {
  if (h.empty() || h.front() != '$')
    return violation("root_password_hash is not a crypt(3) hash: it must start with '$'",
                     "never put a plain password here; make a hash with: mkpasswd -m sha-512 (or openssl passwd -6)");
  for (char c : h) {
    if (is_space(c))
      return violation("root_password_hash contains whitespace", "paste the hash exactly as mkpasswd prints it");
    if (c == ':')
      return violation("root_password_hash contains ':'",
                       "crypt hashes never contain ':'; check that only the hash was pasted, not a shadow line");
  }
  return std::nullopt;
}

RuleCheck check_interface_name(std::string_view n) {
  if (n.empty()) return violation("bridge name is empty");
  if (n == "." || n == "..") return violation(fmt::format("bridge name {} is not an interface name", shown(n)));
  for (char c : n) {
    if (c == '/') return violation(fmt::format("bridge name {} contains '/'", shown(n)),
                                   "write the interface name (br0), not a path");
    if (c == ':') return violation(fmt::format("bridge name {} contains ':'", shown(n)),
                                   "':' marks an alias address, not an interface");
    if (is_space(c) || static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f)
      return violation(fmt::format("bridge name {} contains whitespace or a non-printable character", shown(n)));
  }
  if (n.size() > 15)
    return violation(fmt::format("bridge name {} is {} characters long; Linux interface names have at most 15",
                                 shown(n), n.size()));
  return std::nullopt;
}

namespace {
RuleCheck check_libvirt_name(std::string_view n, std::string_view what) {
  if (n.empty()) return violation(fmt::format("{} is empty", what));
  if (n.size() > 255) return violation(fmt::format("{} is {} characters long; at most 255", what, n.size()));
  if (n.front() == '.' || n.front() == '-')
    return violation(fmt::format("{} {} starts with '{}'", what, shown(n), n.front()));
  for (char c : n) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '+' || c == '-';
    if (!ok)
      return violation(fmt::format("{} {} contains '{}'", what, shown(n),
                                   static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f
                                       ? fmt::format("\\x{:02x}", static_cast<unsigned char>(c))
                                       : std::string(1, c)),
                       "use letters, digits, '.', '_', '+' and '-'");
  }
  return std::nullopt;
}
}  // namespace

RuleCheck check_pool_name(std::string_view n) { return check_libvirt_name(n, "pool name"); }
RuleCheck check_image_name(std::string_view n) { return check_libvirt_name(n, "image name"); }

RuleCheck check_data_disk_device(std::string_view d) {
  constexpr std::string_view kHint = "data disks are virtio devices vdb, vdc, ... vdz, then vdaa, vdab, ...";
  if (d == "vda") return violation("vda is the boot disk", "data disks start at vdb");
  if (d.starts_with("/dev/"))
    return violation(fmt::format("device {} is a path", shown(d)),
                     fmt::format("write the device name only: {}", d.substr(5)));
  auto lower = [](char c) { return c >= 'a' && c <= 'z'; };
  if (d.size() == 3 && d.starts_with("vd") && d[2] >= 'b' && d[2] <= 'z') return std::nullopt;
  if (d.size() == 4 && d.starts_with("vd") && lower(d[2]) && lower(d[3])) return std::nullopt;
  if (d.size() >= 3 && (d.starts_with("sd") || d.starts_with("hd") || d.starts_with("xvd")))
    return violation(fmt::format("device {} is not a virtio disk", shown(d)), std::string(kHint));
  return violation(fmt::format("device {} is not a data disk device name", shown(d)), std::string(kHint));
}

RuleCheck check_absolute_path(std::string_view p) {
  if (p.empty()) return violation("path is empty");
  if (p.front() != '/')
    return violation(fmt::format("path {} is not absolute", shown(p)), "write the full path, starting with '/'");
  for (char c : p)
    if (c == '\0' || c == '\n' || c == '\r') return violation("path contains a NUL or line break");
  if (p.size() > 1 && p.back() == '/')
    return violation(fmt::format("path {} ends with '/'", shown(p)), "name a file, not a directory");
  return std::nullopt;
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::optional<std::string_view> closest_match(std::string_view word, std::span<const std::string_view> candidates) {
  if (word.empty() || word.size() > 256) return std::nullopt;
  std::string w(word);
  for (auto& c : w)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  size_t allowed = w.size() < 4 ? 1 : std::max<size_t>(2, w.size() / 3);
  std::optional<std::string_view> best;
  size_t best_d = SIZE_MAX;
  for (auto cand : candidates) {
    size_t len_gap = cand.size() > w.size() ? cand.size() - w.size() : w.size() - cand.size();
    // "memory" for "memory_gib": a prefix is a plausible slip even when
    // the edit distance is large.
    bool prefix = w.size() >= 3 && (cand.starts_with(w) || std::string_view(w).starts_with(cand));
    if (!prefix && len_gap > allowed) continue;
    size_t d = prefix ? 1 : edit_distance(w, cand);
    if (d <= allowed && d < best_d) {
      best = cand;
      best_d = d;
    }
  }
  return best;
}

}  // namespace foundry::config
