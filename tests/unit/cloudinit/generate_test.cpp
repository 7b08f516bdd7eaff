#include <cstdlib>
#include <string>

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include "fixtures.h"
#include "foundry/cloudinit/cloudinit.h"

using namespace foundry;
using namespace foundry::cloudinit;
using foundry::cloudinit::testing::nic;
using foundry::cloudinit::testing::seed_vm;

namespace {

GenerateOptions with_epoch(int64_t e) {
  GenerateOptions o;
  o.source_date_epoch = e;
  return o;
}

// The three samples of seed 001 "Cloud-init Generation", verbatim.
constexpr const char* kSeedUserData = R"(#cloud-config
hostname: my-vm
fqdn: my-vm.example.com
users:
  - name: root
    ssh_authorized_keys:
      - ssh-ed25519 AAAA...
chpasswd:
  list: |
    root:$6$...
  expire: false
ssh_pwauth: false
)";
constexpr const char* kSeedMetaData = R"(instance-id: my-vm-1730534400
local-hostname: my-vm
)";
constexpr const char* kSeedNetworkConfig = R"(version: 2
ethernets:
  eth0:
    match:
      macaddress: "be:ef:0a:37:16:16"
    addresses:
      - 10.55.22.22/24
    routes:
      - to: default
        via: 10.55.22.1
    nameservers:
      addresses: [8.8.8.8, 1.1.1.1]
)";

}  // namespace

TEST(CloudInitGenerate, SeedExampleIsByteForByteTheSeedsSample) {
  auto d = generate(seed_vm(), with_epoch(1730534400));
  ASSERT_TRUE(d) << d.error().to_string();
  EXPECT_EQ(d->user_data, kSeedUserData);
  EXPECT_EQ(d->meta_data, kSeedMetaData);
  EXPECT_EQ(d->network_config, kSeedNetworkConfig);
  EXPECT_EQ(d->instance_id, "my-vm-1730534400");
}

TEST(CloudInitGenerate, DocumentsParseAsYamlWithTheExpectedValues) {
  auto d = generate(seed_vm(), with_epoch(1730534400)).value();
  YAML::Node u = YAML::Load(d.user_data);
  EXPECT_EQ(u["hostname"].as<std::string>(), "my-vm");
  EXPECT_EQ(u["users"][0]["name"].as<std::string>(), "root");
  EXPECT_EQ(u["users"][0]["ssh_authorized_keys"][0].as<std::string>(), "ssh-ed25519 AAAA...");
  EXPECT_EQ(u["chpasswd"]["list"].as<std::string>(), "root:$6$...\n");
  EXPECT_FALSE(u["chpasswd"]["expire"].as<bool>());
  EXPECT_FALSE(u["ssh_pwauth"].as<bool>());
  YAML::Node n = YAML::Load(d.network_config);
  EXPECT_EQ(n["version"].as<int>(), 2);
  EXPECT_EQ(n["ethernets"]["eth0"]["nameservers"]["addresses"][1].as<std::string>(), "1.1.1.1");
}

TEST(CloudInitGenerate, EveryInterfaceGetsItsMacAndOnlyDefaultRouteOnesGetARoute) {
  auto vm = seed_vm();
  vm.network_interfaces = {
      nic("192.168.1.50/24", "192.168.1.1", {"192.168.1.1"}, false),
      nic("10.20.30.40/16", "10.20.0.1", {"8.8.8.8", "1.1.1.1"}, true),
      nic("172.16.5.9/28", "172.16.5.1", {}, false),
  };
  auto d = generate(vm, with_epoch(1)).value();
  EXPECT_EQ(d.network_config, R"(version: 2
ethernets:
  eth0:
    match:
      macaddress: "be:ef:c0:a8:01:32"
    addresses:
      - 192.168.1.50/24
    nameservers:
      addresses: [192.168.1.1]
  eth1:
    match:
      macaddress: "be:ef:0a:14:1e:28"
    addresses:
      - 10.20.30.40/16
    routes:
      - to: default
        via: 10.20.0.1
    nameservers:
      addresses: [8.8.8.8, 1.1.1.1]
  eth2:
    match:
      macaddress: "be:ef:ac:10:05:09"
    addresses:
      - 172.16.5.9/28
)");
  YAML::Node n = YAML::Load(d.network_config);
  ASSERT_EQ(n["ethernets"].size(), 3u);
  EXPECT_FALSE(n["ethernets"]["eth0"]["routes"]);
  EXPECT_EQ(n["ethernets"]["eth1"]["routes"][0]["via"].as<std::string>(), "10.20.0.1");
  EXPECT_FALSE(n["ethernets"]["eth2"]["nameservers"]);
}

TEST(CloudInitGenerate, ZeroCidrRouteStyleForOlderCloudInitRenderers) {
  GenerateOptions o = with_epoch(1);
  o.default_route_style = DefaultRouteStyle::ZeroCidr;
  auto d = generate(seed_vm(), o).value();
  EXPECT_NE(d.network_config.find("      - to: \"0.0.0.0/0\"\n        via: 10.55.22.1\n"),
            std::string::npos)
      << d.network_config;
  EXPECT_EQ(YAML::Load(d.network_config)["ethernets"]["eth0"]["routes"][0]["to"].as<std::string>(),
            "0.0.0.0/0");
}

TEST(CloudInitGenerate, WithoutFqdnTheHostnameIsTheVmName) {
  auto vm = seed_vm();
  vm.name = "db-01";
  vm.cloud_init->fqdn.clear();
  vm.cloud_init->hostname.clear();
  auto d = generate(vm, with_epoch(7)).value();
  EXPECT_EQ(d.user_data.rfind("#cloud-config\nhostname: db-01\nusers:\n", 0), 0u) << d.user_data;
  EXPECT_EQ(d.user_data.find("fqdn"), std::string::npos);
  EXPECT_EQ(d.meta_data, "instance-id: db-01-7\nlocal-hostname: db-01\n");
}

TEST(CloudInitGenerate, HostnameFallsBackToTheFirstFqdnLabel) {
  auto vm = seed_vm();
  vm.cloud_init->fqdn = "web.prod.example.org";
  vm.cloud_init->hostname.clear();
  EXPECT_EQ(effective_hostname(vm), "web");
  auto d = generate(vm, with_epoch(7)).value();
  EXPECT_NE(d.user_data.find("hostname: web\nfqdn: web.prod.example.org\n"), std::string::npos);
}

TEST(CloudInitGenerate, NoKeysAndNoHashLeaveThoseBlocksOut) {
  auto vm = seed_vm();
  vm.cloud_init->ssh_keys.clear();
  vm.cloud_init->root_password_hash.clear();
  vm.cloud_init->ssh_pwauth = true;
  auto d = generate(vm, with_epoch(7)).value();
  EXPECT_EQ(d.user_data, R"(#cloud-config
hostname: my-vm
fqdn: my-vm.example.com
users:
  - name: root
ssh_pwauth: true
)");
}

TEST(CloudInitGenerate, AVmWithoutCloudInitIsAValidationError) {
  auto vm = seed_vm();
  vm.cloud_init.reset();
  auto d = generate(vm);
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().kind(), ErrorKind::Validation);
  EXPECT_NE(d.error().message().find("my-vm"), std::string::npos);
}

TEST(CloudInitGenerate, AwkwardStringsSurviveAYamlRoundTrip) {
  auto vm = seed_vm();
  const std::vector<std::string> keys = {
      "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFoo user@host: #1 [a], {b}",
      "ssh-rsa AAAAB3Nza \"quoted\" and \\backslash\\ 'single'",
      "ssh-ed25519 AAAA José ☃ ünïcødé",
      "ssh-ed25519 AAAA trailing-colon:",
      "ssh-ed25519 AAAA ends with space ",
      "- dash first",
      "*alias &anchor !tag |pipe >fold %pct @at `tick",
      "yes",
      "0x1F",
      "12:30:45",
      "ssh-ed25519 AAAA\u2028line\u2029separators \uFEFF bom \U0001F600",
  };
  vm.cloud_init->ssh_keys = keys;
  vm.cloud_init->root_password_hash = "$6$rounds=5000$s#a: l[t]$h\"a\\s'h{}|>*&!%@`";
  vm.network_interfaces[0].dns_servers = {"2001:db8::1", "8.8.8.8", "fe80::1%eth0"};
  auto d = generate(vm, with_epoch(1));
  ASSERT_TRUE(d) << d.error().to_string();
  YAML::Node u = YAML::Load(d->user_data);
  auto got = u["users"][0]["ssh_authorized_keys"];
  ASSERT_EQ(got.size(), keys.size()) << d->user_data;
  for (size_t i = 0; i < keys.size(); ++i) {
    EXPECT_EQ(got[i].as<std::string>(), keys[i]) << d->user_data;
    EXPECT_TRUE(got[i].IsScalar());
  }
  EXPECT_EQ(u["chpasswd"]["list"].as<std::string>(),
            "root:" + vm.cloud_init->root_password_hash + "\n");
  YAML::Node n = YAML::Load(d->network_config);
  auto dns = n["ethernets"]["eth0"]["nameservers"]["addresses"];
  ASSERT_EQ(dns.size(), 3u) << d->network_config;
  EXPECT_EQ(dns[0].as<std::string>(), "2001:db8::1");
  EXPECT_EQ(dns[2].as<std::string>(), "fe80::1%eth0");
}

TEST(CloudInitGenerate, NamesThatLookLikeNumbersOrBooleansAreQuoted) {
  // Valid VM names by the seed's regex; unquoted, a YAML 1.1 reader would
  // hand cloud-init an int or a bool where its schema wants a string.
  for (std::string name : {"007", "123", "yes", "on", "no", "1e5", "0x1f", "1_000", "null"}) {
    auto vm = seed_vm();
    vm.name = name;
    vm.cloud_init->fqdn.clear();
    vm.cloud_init->hostname.clear();
    auto d = generate(vm, with_epoch(1)).value();
    YAML::Node u = YAML::Load(d.user_data);
    EXPECT_EQ(u["hostname"].Tag(), "!") << name << " was not quoted:\n" << d.user_data;
    EXPECT_EQ(u["hostname"].as<std::string>(), name);
    EXPECT_EQ(YAML::Load(d.meta_data)["local-hostname"].Tag(), "!") << name;
  }
}

TEST(CloudInitGenerate, ControlCharactersAndBadUtf8AreRefusedWithTheField) {
  auto vm = seed_vm();
  vm.cloud_init->ssh_keys = {"ssh-ed25519 AAAA", "ssh-ed25519 BBBB\nssh-rsa injected"};
  auto d = generate(vm, with_epoch(1));
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().kind(), ErrorKind::Validation);
  EXPECT_NE(d.error().message().find("cloud_init.ssh_keys[1]"), std::string::npos)
      << d.error().message();
  EXPECT_NE(d.error().message().find("U+000A"), std::string::npos);

  vm = seed_vm();
  vm.cloud_init->root_password_hash = "$6$abc\nroot2:x";
  d = generate(vm, with_epoch(1));
  ASSERT_FALSE(d);
  EXPECT_NE(d.error().message().find("root_password_hash"), std::string::npos);

  vm = seed_vm();
  vm.cloud_init->ssh_keys = {std::string("ssh-ed25519 AAAA \xC3\x28")};
  d = generate(vm, with_epoch(1));
  ASSERT_FALSE(d);
  EXPECT_NE(d.error().message().find("not valid UTF-8"), std::string::npos);
}

TEST(CloudInitGenerate, SameInputSameBytes) {
  auto a = generate(seed_vm()).value();
  auto b = generate(seed_vm()).value();
  EXPECT_EQ(a.user_data, b.user_data);
  EXPECT_EQ(a.meta_data, b.meta_data);
  EXPECT_EQ(a.network_config, b.network_config);
}

TEST(CloudInitGenerate, ContentInstanceIdIsStableAndFollowsTheContent) {
  auto a = generate(seed_vm()).value();
  ASSERT_EQ(a.instance_id.size(), std::string("my-vm-").size() + 10) << a.instance_id;
  EXPECT_EQ(a.instance_id.rfind("my-vm-", 0), 0u);
  EXPECT_EQ(a.instance_id.find_first_not_of("0123456789", 6), std::string::npos);
  EXPECT_EQ(a.meta_data, "instance-id: " + a.instance_id + "\nlocal-hostname: my-vm\n");
  // The id is the hash of exactly the documents minus the id line.
  EXPECT_EQ(a.instance_id,
            "my-vm-" + content_id_digits(a.user_data + '\0' + "local-hostname: my-vm\n" + '\0' +
                                         a.network_config));

  auto changed = seed_vm();
  changed.network_interfaces[0].dns_servers.push_back("9.9.9.9");
  EXPECT_NE(generate(changed).value().instance_id, a.instance_id);
  auto other_key = seed_vm();
  other_key.cloud_init->ssh_keys[0] = "ssh-ed25519 BBBB...";
  EXPECT_NE(generate(other_key).value().instance_id, a.instance_id);
}

TEST(CloudInitGenerate, ContentIdDigitsIsFnv1a64ModuloTenToTheTen) {
  // Reference values computed independently (FNV-1a 64 offset basis
  // 0xcbf29ce484222325, prime 0x100000001b3).
  EXPECT_EQ(content_id_digits(""), "9346656037");
  EXPECT_EQ(content_id_digits("a"), "0555641996");
  EXPECT_EQ(content_id_digits("foobar"), "1332436968");
}

TEST(CloudInitGenerate, SourceDateEpochFromTheEnvironment) {
  ::unsetenv("SOURCE_DATE_EPOCH");
  EXPECT_EQ(source_date_epoch_from_env().value(), std::nullopt);
  ::setenv("SOURCE_DATE_EPOCH", "", 1);
  EXPECT_EQ(source_date_epoch_from_env().value(), std::nullopt);
  ::setenv("SOURCE_DATE_EPOCH", "1730534400", 1);
  EXPECT_EQ(source_date_epoch_from_env().value(), std::optional<int64_t>(1730534400));
  for (const char* bad : {"-5", "12a", " 12", "1.5", "9999999999999999999999"}) {
    ::setenv("SOURCE_DATE_EPOCH", bad, 1);
    auto r = source_date_epoch_from_env();
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().kind(), ErrorKind::Config);
    EXPECT_NE(r.error().message().find("SOURCE_DATE_EPOCH"), std::string::npos);
  }
  ::unsetenv("SOURCE_DATE_EPOCH");
}
