// The single-value rules, checked directly with tables of good and bad values.
#include <fstream>

#include <gtest/gtest.h>

#include "foundry/config/rules.h"

using namespace foundry::config;

namespace {

// Real keys made once with ssh-keygen (ed25519, RSA 3072, ECDSA 256/384/521)
// and one FIDO ed25519-sk key assembled by hand in its wire format (accepted
// by `ssh-keygen -l`).
const char* kEd25519 =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAID1n215E4r5vf1iOaVHQolj95+g5dBzfyu17ghofVxh7 admin@example.com";
const char* kRsa3072 =
    "ssh-rsa "
    "AAAAB3NzaC1yc2EAAAADAQABAAABgQCd9sIhebK6doSn/0H8JfGj6LnaR28KE5Yiv2zJ6irS5rplx5h34EbHRlS1Ocf8Q3t8fmZ5/"
    "9TpUSyZRKlSPm1j1UN7BiYt6W2jxtiB9xCPVoLJ05VX3cQD6cvLw8pWf2tmQ1KH7EtzTjbMbWTBByMuEpLCwHn/nhYB5v/"
    "eCNWvL2vAqfzVcduJHfIa+UpyqKymDkvPY2WFfCW2D3TpO9HLZWnqLTCKh0e4quPuXJh7iKZjpLgoegv5PwuDHsuAcCHWGicCH4Gl8upvJghrJ8r"
    "P7aBFrADCDc3MBTV9nakLzcsqWAXa//m8i3BK9cUqXuVDrDswp7dEo+EHuOo4jZwR10oKeBDQSbQi4NFPLsrkVGxtnh2vmEHrzKHAeMAGuNmi9VA"
    "caVPgXQbPs9fVfNijyciCXnKDaeRtYlGjXT2LenReDZ2bIH13Sd8qgE1Z1kFy5i9sH6UdcPidFuvWXoVy918aPzn1ywd7Llqv+/"
    "MJKtKzdk4AxNILJ9vAhUISUxc= ops@example.com";
const char* kEcdsa256 =
    "ecdsa-sha2-nistp256 "
    "AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBA4X2k2765FWbqtVCHfD+n3W5/"
    "hleg24+uyfW038xK9lB22QgRNl1+GYj4IPk7dyNeLk5lTBGZhfnN4BuQoBbH4= e256";
const char* kEcdsa384 =
    "ecdsa-sha2-nistp384 "
    "AAAAE2VjZHNhLXNoYTItbmlzdHAzODQAAAAIbmlzdHAzODQAAABhBCLfxZ4/y2cu7PAbh1tD/juOAbCehRwHRiuzZpApy/"
    "zBp71neTS690cEtzEHyAGtnxVnJYr7tZ5VUvKstQnzM0AgFYka9paGGz107KleuTxiVadBVhbLwgcDX6opJJq+qA== ci@example.com";
const char* kEcdsa521 =
    "ecdsa-sha2-nistp521 "
    "AAAAE2VjZHNhLXNoYTItbmlzdHA1MjEAAAAIbmlzdHA1MjEAAACFBAF0MvaftqhNBylm5AsLWgi0p6VyJY8zR99vmkDKLMlvWO3C+"
    "xCoYB5QL2mWNsdUqMtQQMoXfHSxsZvDa4qm6NP+ywEYAtFwewIsgnqM/bM4lVFGd0FapAEFAh6qDzHdMkRSANoVJm6wJ89OEFAm62ms/"
    "dgvMDiF3YYULzbjmVFhhfoVcg== e521";
const char* kSkEd25519 =
    "sk-ssh-ed25519@openssh.com "
    "AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29tAAAAINXQQyb89wq74MLkeJS0NQbUqom8acx2u0fOZ57GSKLSAAAABHNzaDo= "
    "yubi@example.com";
// Structure only (random point): the loader checks the wire layout, not
// that the point is on the curve.
const char* kSkEcdsa =
    "sk-ecdsa-sha2-nistp256@openssh.com "
    "AAAAInNrLWVjZHNhLXNoYTItbmlzdHAyNTZAb3BlbnNzaC5jb20AAAAIbmlzdHAyNTYAAABBBNCECjJYNSMO/AtyRKCgG4PT/"
    "G1h0EPRnl0E4gg4oYqv9st4ojc0BY8FDnWf5ARFRIE5vA1n4705lzH29kyp/0YAAAAEc3NoOg==";

}  // namespace

TEST(Rules, VmName) {
  const std::string longest = "x" + std::string(61, '7') + "z";  // 63 characters
  const std::string too_long = longest + "0";
  for (const std::string ok : {"ab", "my-vm", "web_01", "0a", "a-b_c-9", longest.c_str()})
    EXPECT_FALSE(check_vm_name(ok)) << ok;
  for (const std::string bad : {"", "a", "-ab", "ab-", "_ab", "ab_", "a.b", "a b", "AB", "ab/c", "a\x01" "b",
                                too_long.c_str()})
    EXPECT_TRUE(check_vm_name(bad)) << bad;
}

TEST(Rules, Fqdn) {
  for (const char* ok : {"a.b", "my-vm.example.com", "x1.lab.example.org", "a.b.c.d.e.f", "web.co1"})
    EXPECT_FALSE(check_fqdn(ok)) << ok;
  for (const char* bad : {"", "host", "host.", ".host.com", "a..b", "-a.b", "a-.b", "a.-b", "a_b.com", "a b.com",
                          "10.0.0.1", "a.123"})
    EXPECT_TRUE(check_fqdn(bad)) << bad;
  EXPECT_TRUE(check_fqdn(std::string(64, 'a') + ".com"));
  EXPECT_FALSE(check_fqdn(std::string(63, 'a') + ".com"));
  std::string long_name;
  while (long_name.size() < 255) long_name += "abcdefghi.";
  long_name += "com";
  EXPECT_TRUE(check_fqdn(long_name));
}

TEST(Rules, SshKeysOfEveryAcceptedType) {
  for (const char* k : {kEd25519, kRsa3072, kEcdsa256, kEcdsa384, kEcdsa521, kSkEd25519, kSkEcdsa}) {
    auto r = check_ssh_public_key(k);
    EXPECT_FALSE(r) << k << ": " << (r ? r->message : "");
  }
  // No comment, surrounding whitespace, a comment with spaces.
  std::string ed(kEd25519);
  std::string no_comment = ed.substr(0, ed.rfind(' '));
  EXPECT_FALSE(check_ssh_public_key(no_comment));
  EXPECT_FALSE(check_ssh_public_key("  " + ed + "\n"));
  EXPECT_FALSE(check_ssh_public_key(no_comment + "\tJane Doe (laptop) 2025"));
}

TEST(Rules, SshKeysThatAreWrong) {
  std::string ed(kEd25519);
  std::string blob = ed.substr(12, ed.rfind(' ') - 12);
  struct Case {
    std::string key;
    std::string in_message;
  };
  std::vector<Case> cases = {
      {"", "empty"},
      {"ssh-ed25519", "no key data"},
      {"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFoo...", "base64"},
      {"ssh-rsa " + blob, "of type ssh-ed25519 but the line says ssh-rsa"},
      {"ecdsa-sha2-nistp256 " + blob, "of type ssh-ed25519"},
      {blob, "no type"},
      {"ssh-ed448 " + blob, "unknown SSH key type"},
      {"ssh-dss AAAAB3NzaC1kc3MAAACBAP1/", "DSA"},
      {"-----BEGIN OPENSSH PRIVATE KEY-----", "PRIVATE"},
      {"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPFMbT/CAUJZiqdjq1VBuNs=", "truncated"},
      {"ssh-ed25519 " + blob.substr(0, blob.size() - 4), "truncated"},
      {"ssh-ed25519 " + blob + "AAAA", "truncated"},  // trailing bytes
      {"ssh-ed25519 " + blob.substr(0, 20) + "\n" + blob.substr(20), "several lines"},
      {"ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAQADAnwLoILkKz7qblUSZ6ExHWogPYtt9YvwX4Less3SsLaspsmG+BjG6xE68Jzm2/"
       "pL5ZIFQWty1WKKZlRqMd8s=",
       "1024 bits"},
      {"ssh-ed25519 AAAA", "does not start with a key type"},
  };
  for (const auto& c : cases) {
    auto r = check_ssh_public_key(c.key);
    ASSERT_TRUE(r) << "accepted: " << c.key;
    EXPECT_NE(r->message.find(c.in_message), std::string::npos) << c.key << " -> " << r->message;
  }
  auto typo = check_ssh_public_key("ssh-ed2519 " + blob);
  ASSERT_TRUE(typo);
  EXPECT_EQ(typo->hint, "did you mean ssh-ed25519?");
}

TEST(Rules, PasswordHash) {
  EXPECT_FALSE(check_password_hash("$6$salt$hash"));
  EXPECT_FALSE(check_password_hash("$y$j9T$abc$def"));
  EXPECT_TRUE(check_password_hash(""));
  EXPECT_TRUE(check_password_hash("hunter2"));
  EXPECT_TRUE(check_password_hash("$6$salt$ha sh"));
  EXPECT_TRUE(check_password_hash("$6$salt$hash:19000:0:99999:7:::"));
}

TEST(Rules, InterfaceName) {
  for (const char* ok : {"br0", "virbr0", "br-storage.10", "a", "123456789012345"})
    EXPECT_FALSE(check_interface_name(ok)) << ok;
  for (const char* bad : {"", ".", "..", "1234567890123456", "br/0", "br 0", "br\t0", "br:0", "br\n"})
    EXPECT_TRUE(check_interface_name(bad)) << bad;
}

TEST(Rules, PoolAndImageNames) {
  for (const char* ok : {"foundry-vms", "ssd_pool", "ubuntu-24.04", "fedora-42.qcow2", "A+B"})
    EXPECT_FALSE(check_pool_name(ok)) << ok;
  for (const char* bad : {"", ".hidden", "-x", "a/b", "a b", "a:b"}) {
    EXPECT_TRUE(check_pool_name(bad)) << bad;
    EXPECT_TRUE(check_image_name(bad)) << bad;
  }
  EXPECT_TRUE(check_pool_name(std::string(256, 'a')));
}

TEST(Rules, DataDiskDevice) {
  for (const char* ok : {"vdb", "vdc", "vdz", "vdaa", "vdzz"}) EXPECT_FALSE(check_data_disk_device(ok)) << ok;
  for (const char* bad : {"vda", "vd", "sdb", "hdb", "xvdb", "/dev/vdb", "vdB", "vd1", "vdaaa", ""})
    EXPECT_TRUE(check_data_disk_device(bad)) << bad;
  EXPECT_EQ(check_data_disk_device("vda")->hint, "data disks start at vdb");
  EXPECT_EQ(check_data_disk_device("/dev/vdc")->hint, "write the device name only: vdc");
}

TEST(Rules, AbsolutePath) {
  EXPECT_FALSE(check_absolute_path("/usr/share/OVMF/OVMF_CODE_4M.fd"));
  EXPECT_TRUE(check_absolute_path(""));
  EXPECT_TRUE(check_absolute_path("OVMF_CODE.fd"));
  EXPECT_TRUE(check_absolute_path("/usr/share/"));
  EXPECT_TRUE(check_absolute_path(std::string("/a\0b", 4)));
}

TEST(Rules, EditDistanceAndSuggestions) {
  EXPECT_EQ(edit_distance("", ""), 0u);
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
  EXPECT_EQ(edit_distance("vcpu", "vcpus"), 1u);
  EXPECT_EQ(edit_distance("abc", ""), 3u);
  const std::string_view keys[] = {"name", "vcpus", "memory_gib", "boot_disk", "network_interfaces", "autostart"};
  EXPECT_EQ(closest_match("vcpu", keys), "vcpus");
  EXPECT_EQ(closest_match("cpus", keys), "vcpus");
  EXPECT_EQ(closest_match("memory", keys), "memory_gib");
  EXPECT_EQ(closest_match("memory_gb", keys), "memory_gib");
  EXPECT_EQ(closest_match("Name", keys), "name");
  EXPECT_EQ(closest_match("network_interface", keys), "network_interfaces");
  EXPECT_EQ(closest_match("bootdisk", keys), "boot_disk");
  EXPECT_FALSE(closest_match("ram", keys));
  EXPECT_FALSE(closest_match("zzzzzz", keys));
  EXPECT_FALSE(closest_match(std::string(10000, 'a'), keys));
}
