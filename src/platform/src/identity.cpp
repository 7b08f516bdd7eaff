#include "foundry/platform/identity.h"

#include <sys/stat.h>

#include <ctime>
#include <filesystem>
#include <functional>
#include <memory>

#include <fmt/format.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "foundry/common/file.h"

namespace foundry::platform {

namespace {

namespace fs = std::filesystem;

template <auto Fn>
struct Deleter {
  template <typename T>
  void operator()(T* p) const { Fn(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY_free>>;
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, Deleter<EVP_PKEY_CTX_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO_free>>;
using NamePtr = std::unique_ptr<X509_NAME, Deleter<X509_NAME_free>>;
using BnPtr = std::unique_ptr<BIGNUM, Deleter<BN_free>>;
using ExtPtr = std::unique_ptr<X509_EXTENSION, Deleter<X509_EXTENSION_free>>;

// The error text libcrypto queued, without any key material (OpenSSL never
// puts key bytes in its error strings).
std::string ssl_error() {
  unsigned long e = ERR_get_error();
  if (!e) return "unknown libcrypto error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return buf;
}

Error crypto_error(std::string what) {
  return Error(ErrorKind::Operation, fmt::format("{}: {}", what, ssl_error()));
}

std::string base64(const uint8_t* data, size_t n) {
  std::string out(4 * ((n + 2) / 3) + 1, '\0');
  int len = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(n));
  out.resize(static_cast<size_t>(len));
  return out;
}

Result<std::vector<uint8_t>> unbase64_32(const std::string& s, const std::string& what) {
  std::string t = s;
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' ')) t.pop_back();
  if (t.size() != 44 || t[43] != '=')
    return fail(Error(ErrorKind::Validation, fmt::format("{} is not a base64 WireGuard key", what))
                    .with_hint("a WireGuard key is 44 characters of base64 ending in '=' (as `wg genkey` prints)"));
  std::vector<uint8_t> out(33);
  int n = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(t.data()), 44);
  if (n != 33)
    return fail(Error(ErrorKind::Validation, fmt::format("{} is not a base64 WireGuard key", what))
                    .with_hint("a WireGuard key is 44 characters of base64 ending in '=' (as `wg genkey` prints)"));
  out.resize(32);  // EVP_DecodeBlock counts the padding byte as data
  return out;
}

Result<PkeyPtr> generate_key(int type) {
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_id(type, nullptr));
  EVP_PKEY* raw = nullptr;
  if (!ctx || EVP_PKEY_keygen_init(ctx.get()) <= 0 || EVP_PKEY_keygen(ctx.get(), &raw) <= 0)
    return fail(crypto_error("generate key"));
  return PkeyPtr(raw);
}

Result<std::string> private_pem(EVP_PKEY* k) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), k, nullptr, nullptr, 0, nullptr, nullptr) != 1)
    return fail(crypto_error("encode private key"));
  char* p = nullptr;
  long n = BIO_get_mem_data(bio.get(), &p);
  return std::string(p, static_cast<size_t>(n));
}

Result<PkeyPtr> load_private_pem(const std::string& pem, const std::string& what) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  EVP_PKEY* k = bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr;
  if (!k) {
    ERR_clear_error();
    return fail(Error(ErrorKind::Validation, fmt::format("{} is not a PEM private key", what))
                    .with_hint("remove the file to have a new key made, or restore it from the recovery key"));
  }
  PkeyPtr key(k);
  if (EVP_PKEY_id(k) != EVP_PKEY_ED25519)
    return fail(Error(ErrorKind::Validation, fmt::format("{} is not an Ed25519 key", what))
                    .with_hint("Foundry's cluster keys are Ed25519; remove the file to have a new one made"));
  return key;
}

Result<X509Ptr> load_cert_pem(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  X509* c = bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr;
  if (!c) return fail(crypto_error("read PEM certificate"));
  return X509Ptr(c);
}

Result<std::string> cert_pem(X509* c) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), c) != 1) return fail(crypto_error("encode certificate"));
  char* p = nullptr;
  long n = BIO_get_mem_data(bio.get(), &p);
  return std::string(p, static_cast<size_t>(n));
}

Status add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  ExtPtr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1)
    return fail(crypto_error(fmt::format("add certificate extension {}", OBJ_nid2sn(nid))));
  return ok();
}

struct CertSpec {
  std::string cluster;
  std::string common_name;
  std::string organization;
  bool ca = false;
  std::string san;  // "DNS:a,IP:1.2.3.4"
  int64_t not_before = 0;
  int64_t days = 3650;
};

Result<std::string> issue(const CertSpec& s, EVP_PKEY* subject_key, EVP_PKEY* issuer_key, X509* issuer_cert) {
  X509Ptr c(X509_new());
  if (!c) return fail(crypto_error("allocate certificate"));
  X509_set_version(c.get(), 2);  // v3
  std::string hex = derive_cert_serial_hex(s.cluster, s.common_name);
  BIGNUM* bn_raw = nullptr;
  if (!BN_hex2bn(&bn_raw, hex.c_str())) return fail(crypto_error("certificate serial"));
  BnPtr bn(bn_raw);
  if (!BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(c.get()))) return fail(crypto_error("certificate serial"));
  NamePtr name(X509_NAME_new());
  X509_NAME_add_entry_by_txt(name.get(), "O", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(s.organization.c_str()), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name.get(), "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(s.common_name.c_str()), -1, -1, 0);
  X509_set_subject_name(c.get(), name.get());
  X509_set_issuer_name(c.get(), issuer_cert ? X509_get_subject_name(issuer_cert) : name.get());
  time_t nb = static_cast<time_t>(s.not_before);
  if (!ASN1_TIME_set(X509_getm_notBefore(c.get()), nb) ||
      !ASN1_TIME_set(X509_getm_notAfter(c.get()), nb + static_cast<time_t>(s.days) * 86400))
    return fail(crypto_error("certificate validity"));
  if (X509_set_pubkey(c.get(), subject_key) != 1) return fail(crypto_error("certificate public key"));
  X509* iss = issuer_cert ? issuer_cert : c.get();
  if (s.ca) {
    FOUNDRY_TRY(add_ext(c.get(), iss, NID_basic_constraints, "critical,CA:TRUE,pathlen:0"));
    FOUNDRY_TRY(add_ext(c.get(), iss, NID_key_usage, "critical,keyCertSign,cRLSign"));
    FOUNDRY_TRY(add_ext(c.get(), iss, NID_subject_key_identifier, "hash"));
  } else {
    FOUNDRY_TRY(add_ext(c.get(), iss, NID_basic_constraints, "critical,CA:FALSE"));
    FOUNDRY_TRY(add_ext(c.get(), iss, NID_key_usage, "critical,digitalSignature"));
    FOUNDRY_TRY(add_ext(c.get(), iss, NID_ext_key_usage, "serverAuth,clientAuth"));
    FOUNDRY_TRY(add_ext(c.get(), iss, NID_subject_key_identifier, "hash"));
    FOUNDRY_TRY(add_ext(c.get(), iss, NID_authority_key_identifier, "keyid:always"));
    if (!s.san.empty()) FOUNDRY_TRY(add_ext(c.get(), iss, NID_subject_alt_name, s.san));
  }
  // Ed25519 takes no digest (the algorithm hashes itself) and signs
  // deterministically (RFC 8032): same key and content, same signature.
  if (X509_sign(c.get(), issuer_key, nullptr) <= 0) return fail(crypto_error("sign certificate"));
  return cert_pem(c.get());
}

// Reads `path` when it exists (a secret), else makes it with `make` and
// writes it 0600. `made` collects the names of new files.
Result<std::string> load_or_make(const std::string& path, bool require_existing,
                                 const std::function<Result<std::string>()>& make, std::vector<std::string>& made) {
  std::error_code ec;
  if (fs::exists(path, ec)) {
    struct stat st{};
    if (::stat(path.c_str(), &st) == 0 && (st.st_mode & 077) != 0)
      return fail(Error(ErrorKind::Validation, fmt::format("secret {} is readable by others (mode {:o})", path,
                                                           st.st_mode & 0777))
                      .with_hint(fmt::format("chmod 600 {}", path)));
    return read_file(path);
  }
  if (require_existing)
    return fail(Error(ErrorKind::Validation, fmt::format("secret {} is missing", path))
                    .with_hint("restore the secrets directory from the recovery key, or drop the option that "
                               "requires existing secrets"));
  auto text = FOUNDRY_TRY(make());
  FOUNDRY_TRY(make_dirs(fs::path(path).parent_path().string(), 0700));
  FOUNDRY_TRY(write_file_atomic(path, text, 0600));
  made.push_back(path);
  return text;
}

}  // namespace

Result<WireGuardKeyPair> generate_wireguard_key() {
  auto k = FOUNDRY_TRY(generate_key(EVP_PKEY_X25519));
  uint8_t priv[32];
  size_t n = sizeof priv;
  if (EVP_PKEY_get_raw_private_key(k.get(), priv, &n) != 1 || n != 32)
    return fail(crypto_error("read X25519 private key"));
  // Clamped as `wg genkey` does (RFC 7748); X25519 clamps again anyway.
  priv[0] &= 248;
  priv[31] = static_cast<uint8_t>((priv[31] & 127) | 64);
  WireGuardKeyPair p;
  p.private_key = base64(priv, 32);
  OPENSSL_cleanse(priv, sizeof priv);
  p.public_key = FOUNDRY_TRY(wireguard_public_key(p.private_key));
  return p;
}

Result<std::string> wireguard_public_key(const std::string& private_key_base64) {
  auto raw = FOUNDRY_TRY(unbase64_32(private_key_base64, "the WireGuard private key"));
  PkeyPtr k(EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr, raw.data(), raw.size()));
  OPENSSL_cleanse(raw.data(), raw.size());
  if (!k) return fail(crypto_error("load X25519 private key"));
  uint8_t pub[32];
  size_t n = sizeof pub;
  if (EVP_PKEY_get_raw_public_key(k.get(), pub, &n) != 1 || n != 32)
    return fail(crypto_error("derive X25519 public key"));
  return base64(pub, 32);
}

std::string derive_cert_serial_hex(const std::string& cluster, const std::string& subject) {
  std::string in = "foundry-cert";
  in.push_back('\0');
  in += cluster;
  in.push_back('\0');
  in += subject;
  uint8_t md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(in.data()), in.size(), md);
  md[0] &= 0x7f;
  md[0] |= 0x40;  // no leading zero byte: always 16 bytes encoded
  std::string hex;
  for (int i = 0; i < 16; ++i) hex += fmt::format("{:02X}", md[i]);
  return hex;
}

Result<ClusterIdentity> ensure_identity(const config::ClusterConfig& c, const IdentityOptions& o) {
  if (o.secrets_dir.empty()) return fail(ErrorKind::Config, "cluster identity: no secrets directory given");
  FOUNDRY_TRY_CTX(make_dirs(o.secrets_dir, 0700), "cluster identity: secrets directory {}", o.secrets_dir);
  ::chmod(o.secrets_dir.c_str(), 0700);
  ClusterIdentity id;
  const std::string dir = o.secrets_dir;
  int64_t nb = o.not_before ? o.not_before : static_cast<int64_t>(std::time(nullptr));
  auto make_ed25519 = []() -> Result<std::string> {
    auto k = FOUNDRY_TRY(generate_key(EVP_PKEY_ED25519));
    return private_pem(k.get());
  };
  id.ca_key_pem = FOUNDRY_TRY_CTX(load_or_make(dir + "/ca.key", o.require_existing, make_ed25519, id.generated),
                                  "cluster identity: CA key");
  auto ca_key = FOUNDRY_TRY_CTX(load_private_pem(id.ca_key_pem, dir + "/ca.key"), "cluster identity");
  CertSpec ca_spec{c.name, c.name + " cluster CA", "foundry:" + c.name, true, "", nb, o.validity_days};
  id.ca_cert_pem = FOUNDRY_TRY_CTX(issue(ca_spec, ca_key.get(), ca_key.get(), nullptr), "cluster identity: CA");
  FOUNDRY_TRY(write_file_atomic(dir + "/ca.crt", id.ca_cert_pem, 0644));
  auto ca_cert = FOUNDRY_TRY(load_cert_pem(id.ca_cert_pem));

  for (const auto& n : c.nodes) {
    NodeIdentity ni;
    ni.node = n.name;
    const std::string nd = dir + "/nodes/" + n.name;
    ni.key_pem = FOUNDRY_TRY_CTX(load_or_make(nd + "/node.key", o.require_existing, make_ed25519, id.generated),
                                 "cluster identity: key of node {}", n.name);
    auto key = FOUNDRY_TRY_CTX(load_private_pem(ni.key_pem, nd + "/node.key"), "cluster identity");
    CertSpec spec{c.name, n.name + "." + c.name, "foundry:" + c.name, false,
                  fmt::format("DNS:{},DNS:{}.{},IP:{},IP:{}", n.name, n.name, c.name, n.address.addr.to_string(),
                              n.mesh_address.to_string()),
                  nb, o.validity_days};
    ni.cert_pem = FOUNDRY_TRY_CTX(issue(spec, key.get(), ca_key.get(), ca_cert.get()),
                                  "cluster identity: certificate of node {}", n.name);
    FOUNDRY_TRY(write_file_atomic(nd + "/node.crt", ni.cert_pem, 0644));
    auto make_wg = []() -> Result<std::string> {
      auto kp = FOUNDRY_TRY(generate_wireguard_key());
      return kp.private_key + "\n";
    };
    auto wg_text = FOUNDRY_TRY_CTX(load_or_make(nd + "/wg.key", o.require_existing, make_wg, id.generated),
                                   "cluster identity: WireGuard key of node {}", n.name);
    while (!wg_text.empty() && (wg_text.back() == '\n' || wg_text.back() == ' ')) wg_text.pop_back();
    ni.wireguard.private_key = wg_text;
    ni.wireguard.public_key = FOUNDRY_TRY_CTX(wireguard_public_key(wg_text), "cluster identity: {}/wg.key", nd);
    FOUNDRY_TRY(write_file_atomic(nd + "/wg.pub", ni.wireguard.public_key + "\n", 0644));
    id.nodes.emplace(n.name, std::move(ni));
  }
  return id;
}

Result<CertInfo> inspect_certificate(const std::string& pem) {
  auto c = FOUNDRY_TRY(load_cert_pem(pem));
  CertInfo info;
  auto name_text = [](X509_NAME* nm) {
    BioPtr b(BIO_new(BIO_s_mem()));
    X509_NAME_print_ex(b.get(), nm, 0, XN_FLAG_RFC2253);
    char* p = nullptr;
    long n = BIO_get_mem_data(b.get(), &p);
    return std::string(p, static_cast<size_t>(n));
  };
  info.subject = name_text(X509_get_subject_name(c.get()));
  info.issuer = name_text(X509_get_issuer_name(c.get()));
  BnPtr bn(ASN1_INTEGER_to_BN(X509_get0_serialNumber(c.get()), nullptr));
  char* hex = BN_bn2hex(bn.get());
  info.serial_hex = hex;
  OPENSSL_free(hex);
  auto to_epoch = [](const ASN1_TIME* t) {
    struct tm tm{};
    ASN1_TIME_to_tm(t, &tm);
    return static_cast<int64_t>(timegm(&tm));
  };
  info.not_before = to_epoch(X509_get0_notBefore(c.get()));
  info.not_after = to_epoch(X509_get0_notAfter(c.get()));
  auto* sans = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(c.get(), NID_subject_alt_name, nullptr, nullptr));
  if (sans) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
      const GENERAL_NAME* g = sk_GENERAL_NAME_value(sans, i);
      if (g->type == GEN_DNS) {
        info.sans.push_back("DNS:" + std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(g->d.dNSName)),
                                                 static_cast<size_t>(ASN1_STRING_length(g->d.dNSName))));
      } else if (g->type == GEN_IPADD && ASN1_STRING_length(g->d.iPAddress) == 4) {
        const unsigned char* b = ASN1_STRING_get0_data(g->d.iPAddress);
        info.sans.push_back(fmt::format("IP:{}.{}.{}.{}", b[0], b[1], b[2], b[3]));
      }
    }
    GENERAL_NAMES_free(sans);
  }
  return info;
}

Result<bool> certificate_signed_by(const std::string& cert_pem_text, const std::string& ca_cert_pem) {
  auto c = FOUNDRY_TRY(load_cert_pem(cert_pem_text));
  auto ca = FOUNDRY_TRY(load_cert_pem(ca_cert_pem));
  EVP_PKEY* k = X509_get0_pubkey(ca.get());
  if (!k) return fail(crypto_error("CA public key"));
  int r = X509_verify(c.get(), k);
  ERR_clear_error();
  return r == 1;
}

}  // namespace foundry::platform
