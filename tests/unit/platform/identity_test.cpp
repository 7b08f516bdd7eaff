// Build-time identity: WireGuard keys agree with `wg pubkey`, certificates
// chain to the cluster CA with derived serials and SOURCE_DATE_EPOCH
// validity, secrets are 0600 and reused, and the same secrets give the same
// certificates byte for byte.
#include <sys/stat.h>

#include <filesystem>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "foundry/common/file.h"
#include "foundry/common/subprocess.h"
#include "foundry/config/cluster_config.h"
#include "foundry/platform/cluster_build.h"
#include "foundry/platform/identity.h"

using namespace foundry;
using namespace foundry::platform;
using ::testing::HasSubstr;
using ::testing::Not;
namespace fs = std::filesystem;

namespace {

const std::string kExample = std::string(FOUNDRY_SOURCE_DIR) + "/examples/cluster.yaml";
constexpr int64_t kEpoch = 1767225600;  // 2026-01-01

class TempDir {
 public:
  TempDir() {
    std::string t = (fs::temp_directory_path() / "foundry-identity-XXXXXX").string();
    path_ = ::mkdtemp(t.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

mode_t mode_of(const std::string& p) {
  struct stat st{};
  ::stat(p.c_str(), &st);
  return st.st_mode & 0777;
}

}  // namespace

TEST(WireGuardKey, FormatAndWgPubkeyAgree) {
  auto kp = generate_wireguard_key();
  ASSERT_TRUE(kp);
  EXPECT_EQ(kp->private_key.size(), 44u);
  EXPECT_EQ(kp->public_key.size(), 44u);
  EXPECT_NE(kp->private_key, kp->public_key);
  if (find_program("wg").empty()) GTEST_SKIP() << "wg (wireguard-tools) not installed";
  RunOptions ro;
  ro.stdin_data = kp->private_key + "\n";
  auto r = run({"wg", "pubkey"}, ro);
  ASSERT_TRUE(r && r->ok());
  EXPECT_EQ(r->out, kp->public_key + "\n");
}

TEST(WireGuardKey, PublicKeyOfAWgGenkeyKey) {
  if (find_program("wg").empty()) GTEST_SKIP() << "wg (wireguard-tools) not installed";
  auto gen = run({"wg", "genkey"});
  ASSERT_TRUE(gen && gen->ok());
  RunOptions ro;
  ro.stdin_data = gen->out;
  auto pub = run({"wg", "pubkey"}, ro);
  ASSERT_TRUE(pub && pub->ok());
  auto ours = wireguard_public_key(gen->out);
  ASSERT_TRUE(ours);
  EXPECT_EQ(*ours + "\n", pub->out);
}

TEST(WireGuardKey, RejectsGarbage) {
  EXPECT_FALSE(wireguard_public_key("not a key"));
  EXPECT_FALSE(wireguard_public_key(std::string(44, 'A')));
}

TEST(CertSerial, DerivedStablePositiveAndDistinct) {
  auto a = derive_cert_serial_hex("demo", "cp1.demo");
  EXPECT_EQ(a, derive_cert_serial_hex("demo", "cp1.demo"));
  EXPECT_NE(a, derive_cert_serial_hex("demo", "worker1.demo"));
  EXPECT_NE(a, derive_cert_serial_hex("other", "cp1.demo"));
  EXPECT_EQ(a.size(), 32u);
  EXPECT_LT(std::stoi(a.substr(0, 1), nullptr, 16), 8);  // top bit clear: positive
}

TEST(ClusterIdentity, IssuesChainedCertificatesAndKeepsSecretsPrivate) {
  auto c = config::load_cluster_file(kExample);
  ASSERT_TRUE(c);
  TempDir tmp;
  IdentityOptions o;
  o.secrets_dir = tmp.path() + "/secrets";
  o.not_before = kEpoch;
  auto id = ensure_identity(*c, o);
  ASSERT_TRUE(id) << id.error().to_string();
  EXPECT_EQ(id->generated.size(), 1u + 2u * c->nodes.size());
  EXPECT_EQ(mode_of(o.secrets_dir), 0700u);
  EXPECT_EQ(mode_of(o.secrets_dir + "/ca.key"), 0600u);
  auto ca = inspect_certificate(id->ca_cert_pem);
  ASSERT_TRUE(ca);
  EXPECT_EQ(ca->subject, ca->issuer);
  EXPECT_THAT(ca->subject, HasSubstr("demo cluster CA"));
  EXPECT_EQ(ca->not_before, kEpoch);
  for (const auto& n : c->nodes) {
    const std::string nd = o.secrets_dir + "/nodes/" + n.name;
    EXPECT_EQ(mode_of(nd + "/node.key"), 0600u) << n.name;
    EXPECT_EQ(mode_of(nd + "/wg.key"), 0600u) << n.name;
    const auto& ni = id->nodes.at(n.name);
    auto info = inspect_certificate(ni.cert_pem);
    ASSERT_TRUE(info);
    EXPECT_THAT(info->subject, HasSubstr("CN=" + n.name + ".demo"));
    EXPECT_EQ(info->issuer, ca->subject);
    EXPECT_EQ(info->serial_hex, derive_cert_serial_hex("demo", n.name + ".demo"));
    EXPECT_EQ(info->not_before, kEpoch);
    EXPECT_EQ(info->not_after, kEpoch + 3650LL * 86400);
    EXPECT_THAT(info->sans, ::testing::Contains("IP:" + n.address.addr.to_string()));
    EXPECT_THAT(info->sans, ::testing::Contains("IP:" + n.mesh_address.to_string()));
    auto signed_ok = certificate_signed_by(ni.cert_pem, id->ca_cert_pem);
    ASSERT_TRUE(signed_ok);
    EXPECT_TRUE(*signed_ok);
  }
  // A certificate of another CA does not verify.
  TempDir other;
  IdentityOptions o2 = o;
  o2.secrets_dir = other.path() + "/s";
  auto id2 = ensure_identity(*c, o2);
  ASSERT_TRUE(id2);
  EXPECT_FALSE(*certificate_signed_by(id2->nodes.at("cp1").cert_pem, id->ca_cert_pem));
  EXPECT_NE(id2->nodes.at("cp1").wireguard.public_key, id->nodes.at("cp1").wireguard.public_key);
}

TEST(ClusterIdentity, ReusedSecretsGiveIdenticalCertificates) {
  auto c = config::load_cluster_file(kExample);
  ASSERT_TRUE(c);
  TempDir tmp;
  IdentityOptions o;
  o.secrets_dir = tmp.path() + "/secrets";
  o.not_before = kEpoch;
  auto a = ensure_identity(*c, o);
  ASSERT_TRUE(a);
  o.require_existing = true;
  auto b = ensure_identity(*c, o);
  ASSERT_TRUE(b) << b.error().to_string();
  EXPECT_TRUE(b->generated.empty());
  EXPECT_EQ(a->ca_cert_pem, b->ca_cert_pem);
  for (const auto& n : c->nodes) {
    EXPECT_EQ(a->nodes.at(n.name).cert_pem, b->nodes.at(n.name).cert_pem);
    EXPECT_EQ(a->nodes.at(n.name).wireguard.public_key, b->nodes.at(n.name).wireguard.public_key);
  }
}

TEST(ClusterIdentity, RefusesASecretOthersCanRead) {
  auto c = config::load_cluster_file(kExample);
  ASSERT_TRUE(c);
  TempDir tmp;
  IdentityOptions o;
  o.secrets_dir = tmp.path() + "/secrets";
  o.not_before = kEpoch;
  ASSERT_TRUE(ensure_identity(*c, o));
  ::chmod((o.secrets_dir + "/ca.key").c_str(), 0644);
  auto r = ensure_identity(*c, o);
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().to_string(), HasSubstr("readable by others"));
  EXPECT_THAT(r.error().hint(), HasSubstr("chmod 600"));
  // The message names the file, never its content.
  EXPECT_THAT(r.error().to_string(), Not(HasSubstr("PRIVATE KEY")));
}

TEST(ClusterIdentity, MeshConfHasEveryOtherNodeAsPeer) {
  auto c = config::load_cluster_file(kExample);
  ASSERT_TRUE(c);
  TempDir tmp;
  IdentityOptions o;
  o.secrets_dir = tmp.path() + "/secrets";
  o.not_before = kEpoch;
  auto id = ensure_identity(*c, o);
  ASSERT_TRUE(id);
  auto conf = node_mesh_conf(*c, *id, "cp1");
  EXPECT_THAT(conf, HasSubstr("PrivateKey = " + id->nodes.at("cp1").wireguard.private_key));
  EXPECT_THAT(conf, HasSubstr("ListenPort = 51820"));
  EXPECT_THAT(conf, Not(HasSubstr(id->nodes.at("cp1").wireguard.public_key)));
  EXPECT_THAT(conf, HasSubstr("PublicKey = " + id->nodes.at("worker1").wireguard.public_key));
  EXPECT_THAT(conf, HasSubstr("AllowedIPs = 10.90.0.13/32"));
  EXPECT_THAT(conf, HasSubstr("Endpoint = 192.0.2.13:51820"));
  if (find_program("wg").empty()) return;
  // wg itself accepts the file's syntax (strip-less check: `wg-quick strip`
  // is not needed, the file has only wg(8) keys).
}

TEST(NodeAgent, PrintsTheReadyLine) {
  EXPECT_THAT(node_agent_script(), HasSubstr(std::string("echo \"") + std::string(kNodeReadyLine) + "\""));
  EXPECT_THAT(node_agent_unit(), HasSubstr("StandardOutput=journal+console"));
  EXPECT_THAT(node_agent_unit(), HasSubstr("WantedBy=multi-user.target"));
}
