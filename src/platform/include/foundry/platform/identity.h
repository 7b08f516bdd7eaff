// Identity and trust made at build time (seed 000, "Identity and trust"):
// a cluster CA, one certificate per node signed by it, and one WireGuard key
// pair per node.
//
// Keys are Ed25519 (certificates) and X25519 (WireGuard), made with OpenSSL's
// libcrypto. Certificates are a pure function of the keys, the cluster file
// and the validity start: Ed25519 signatures are deterministic, serials are
// derived from the cluster and node names, and the validity starts at
// SOURCE_DATE_EPOCH. So a build that reuses its secrets directory produces
// the same certificates byte for byte.
//
// Private keys live only in the secrets directory (mode 0700, files 0600),
// which the recovery key and the per-node config drives copy from. They never
// appear in a log line, an error message or the manifest.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "foundry/common/error.h"
#include "foundry/config/cluster_config.h"

namespace foundry::platform {

// A WireGuard key pair as `wg genkey` / `wg pubkey` print them: 32 bytes,
// base64 with padding (44 characters).
struct WireGuardKeyPair {
  std::string private_key;
  std::string public_key;
};
Result<WireGuardKeyPair> generate_wireguard_key();
// The public key of a base64 private key (what `wg pubkey` does).
Result<std::string> wireguard_public_key(const std::string& private_key_base64);

struct NodeIdentity {
  std::string node;
  std::string key_pem;   // Ed25519 private key, PKCS#8 PEM (secret)
  std::string cert_pem;  // X.509 certificate signed by the cluster CA
  WireGuardKeyPair wireguard;  // private_key is secret
};

struct ClusterIdentity {
  std::string ca_key_pem;   // secret
  std::string ca_cert_pem;
  std::map<std::string, NodeIdentity> nodes;  // by node name
  // Which keys were made by this run (the rest came from the secrets dir).
  std::vector<std::string> generated;
};

struct IdentityOptions {
  // Where keys are read from when present and written to when made.
  std::string secrets_dir;
  // Start of every certificate's validity (SOURCE_DATE_EPOCH); 0 = now.
  int64_t not_before = 0;
  int64_t validity_days = 3650;
  // Fail instead of making missing keys (a build that must reuse its keys).
  bool require_existing = false;
};

// Loads the keys in secrets_dir, makes the missing ones (writing them there,
// 0600, in a 0700 directory), and issues the certificates (written there too:
// ca.crt, nodes/NAME/node.crt). Layout:
//   ca.key ca.crt  nodes/NAME/{node.key,node.crt,wg.key,wg.pub}
Result<ClusterIdentity> ensure_identity(const config::ClusterConfig& c, const IdentityOptions& opts);

// The certificate serial for a subject: 16 bytes of SHA-256("foundry-cert" ||
// cluster || subject), top bit cleared (serials are positive), as hex.
std::string derive_cert_serial_hex(const std::string& cluster, const std::string& subject);

// Human-readable summary of a PEM certificate (subject, issuer, serial,
// validity), for tests and `-o json`; no secrets.
struct CertInfo {
  std::string subject;
  std::string issuer;
  std::string serial_hex;
  int64_t not_before = 0;
  int64_t not_after = 0;
  std::vector<std::string> sans;  // "DNS:cp1", "IP:10.90.0.1"
};
Result<CertInfo> inspect_certificate(const std::string& pem);
// True when `cert_pem` verifies with the public key of `ca_cert_pem`.
Result<bool> certificate_signed_by(const std::string& cert_pem, const std::string& ca_cert_pem);

}  // namespace foundry::platform
