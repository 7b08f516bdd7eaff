// The single-value rules of the VM file (seed 001, "Configuration Validation
// Rules"), usable on their own: `foundry vm destroy NAME` checks a name the
// same way the loader does, and the fuzzer and unit tests check them directly.
//
// Each check returns nothing when the value is fine, else what is wrong and
// how to fix it. The checks are hand-written scanners rather than regular
// expressions: they run on every load and must stay in the microseconds.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace foundry::config {

struct RuleViolation {
  std::string message;
  std::string hint;  // may be empty
};
using RuleCheck = std::optional<RuleViolation>;

// ^[a-z0-9][a-z0-9_-]*[a-z0-9]$ after lowercasing, at most 63 characters
// (the name is also the guest's hostname when cloud_init.fqdn is absent).
RuleCheck check_vm_name(std::string_view lowercase_name);

// Host name plus domain: at least two dot-separated labels of [a-z0-9-], each
// 1-63 characters, not starting or ending with '-', at most 253 in total, the
// last label not all digits. Expects lowercase input.
RuleCheck check_fqdn(std::string_view lowercase_fqdn);

// An OpenSSH public key line: "TYPE BASE64 [COMMENT]". TYPE is ssh-rsa,
// ssh-ed25519, ecdsa-sha2-nistp256/384/521, sk-ssh-ed25519@openssh.com or
// sk-ecdsa-sha2-nistp256@openssh.com. The base64 blob must decode, start with
// the same type string, and hold exactly the fields of that key type (so a
// truncated paste is caught here, not at the first failed login).
RuleCheck check_ssh_public_key(std::string_view line);

// crypt(3) format: starts with '$', no whitespace or ':' (chpasswd splits
// "user:hash" on ':').
RuleCheck check_password_hash(std::string_view hash);

// A Linux network interface name (kernel dev_valid_name): 1-15 bytes, not
// "." or "..", no '/', ':' or whitespace, printable ASCII.
RuleCheck check_interface_name(std::string_view name);

// A libvirt storage pool or volume name: [A-Za-z0-9._+-], 1-255 characters,
// not starting with '.' or '-'.
RuleCheck check_pool_name(std::string_view name);
RuleCheck check_image_name(std::string_view name);

// A virtio data disk: vdb..vdz, then vdaa..vdzz. vda is the boot disk.
RuleCheck check_data_disk_device(std::string_view device);

// An absolute path without NUL, newlines or a trailing '/'.
RuleCheck check_absolute_path(std::string_view path);

// Levenshtein distance, for "did you mean" suggestions.
size_t edit_distance(std::string_view a, std::string_view b);

// The candidate closest to `word` if it is close enough to be a plausible
// typo (distance <= 2, or <= 1/3 of the length for long words), else nothing.
std::optional<std::string_view> closest_match(std::string_view word,
                                              std::span<const std::string_view> candidates);

}  // namespace foundry::config
