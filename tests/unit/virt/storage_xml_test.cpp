// Pure storage logic: volume naming, pool/volume XML for every pool type,
// image format detection and name rules, checksums, connection hints.
#include <gtest/gtest.h>

#include <pugixml.hpp>

#include "foundry/virt/download.h"
#include "foundry/virt/image.h"
#include "foundry/virt/libvirt.h"
#include "foundry/virt/storage.h"

namespace foundry::virt {
namespace {

pugi::xml_node parse(pugi::xml_document& doc, const std::string& xml) {
  auto r = doc.load_string(xml.c_str());
  EXPECT_TRUE(r) << r.description() << "\n" << xml;
  return doc.first_child();
}

TEST(VolumeName, FollowsTheSeedConvention) {
  EXPECT_EQ(VolumeName::boot("web-server"), "web-server_boot");
  EXPECT_EQ(VolumeName::data("web-server", "vdb"), "web-server_data-vdb");
  EXPECT_EQ(VolumeName::cloudinit("my-vm"), "my-vm_cloudinit");
}

TEST(VolumeName, ParsesBackIncludingUnderscoresInVmNames) {
  auto b = VolumeName::parse("my_vm_boot");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->vm, "my_vm");
  EXPECT_EQ(b->role, VolumeName::Role::Boot);
  auto d = VolumeName::parse("web-server_data-vdc");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->vm, "web-server");
  EXPECT_EQ(d->role, VolumeName::Role::Data);
  EXPECT_EQ(d->device, "vdc");
  auto c = VolumeName::parse("a_cloudinit");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->vm, "a");
  EXPECT_EQ(c->role, VolumeName::Role::CloudInit);
  for (auto name : {"debian-12.qcow2", "_boot", "x_data-", "x_data-v/b", "boot", "fedora-43"})
    EXPECT_FALSE(VolumeName::parse(name)) << name;
}

TEST(PoolXml, DirPool) {
  PoolSpec s;
  s.name = "ssd";
  s.path = "/mnt/ssd/foundry";
  ASSERT_TRUE(validate_pool_spec(s));
  pugi::xml_document doc;
  auto pool = parse(doc, pool_xml(s));
  EXPECT_STREQ(pool.attribute("type").as_string(), "dir");
  EXPECT_STREQ(pool.child_value("name"), "ssd");
  EXPECT_STREQ(pool.child("target").child_value("path"), "/mnt/ssd/foundry");
  EXPECT_FALSE(pool.child("source"));
}

TEST(PoolXml, LogicalPool) {
  PoolSpec s;
  s.name = "lvm";
  s.type = PoolType::Logical;
  s.source_name = "vg_vms";
  s.source_devices = {"/dev/sdb", "/dev/sdc"};
  ASSERT_TRUE(validate_pool_spec(s));
  pugi::xml_document doc;
  auto pool = parse(doc, pool_xml(s));
  EXPECT_STREQ(pool.attribute("type").as_string(), "logical");
  EXPECT_STREQ(pool.child("source").child_value("name"), "vg_vms");
  std::vector<std::string> devs;
  for (auto d : pool.child("source").children("device")) devs.push_back(d.attribute("path").as_string());
  EXPECT_EQ(devs, (std::vector<std::string>{"/dev/sdb", "/dev/sdc"}));
  EXPECT_STREQ(pool.child("source").child("format").attribute("type").as_string(), "lvm2");
  EXPECT_STREQ(pool.child("target").child_value("path"), "/dev/vg_vms");
}

TEST(PoolXml, NetfsPool) {
  PoolSpec s;
  s.name = "bulk";
  s.type = PoolType::Netfs;
  s.hosts = {{"nas.example.com", 0}};
  s.source_path = "/export/vms";
  s.path = "/mnt/bulk";
  ASSERT_TRUE(validate_pool_spec(s));
  pugi::xml_document doc;
  auto pool = parse(doc, pool_xml(s));
  EXPECT_STREQ(pool.attribute("type").as_string(), "netfs");
  auto src = pool.child("source");
  EXPECT_STREQ(src.child("host").attribute("name").as_string(), "nas.example.com");
  EXPECT_FALSE(src.child("host").attribute("port"));
  EXPECT_STREQ(src.child("dir").attribute("path").as_string(), "/export/vms");
  EXPECT_STREQ(src.child("format").attribute("type").as_string(), "nfs");
  EXPECT_STREQ(pool.child("target").child_value("path"), "/mnt/bulk");
}

TEST(PoolXml, ZfsPool) {
  PoolSpec s;
  s.name = "tank";
  s.type = PoolType::Zfs;
  s.source_name = "tank/vms";
  ASSERT_TRUE(validate_pool_spec(s));
  pugi::xml_document doc;
  auto pool = parse(doc, pool_xml(s));
  EXPECT_STREQ(pool.attribute("type").as_string(), "zfs");
  EXPECT_STREQ(pool.child("source").child_value("name"), "tank/vms");
  EXPECT_FALSE(pool.child("target"));  // libvirt derives /dev/zvol/<name>
}

TEST(PoolXml, RbdPoolWithCephx) {
  PoolSpec s;
  s.name = "ceph";
  s.type = PoolType::Rbd;
  s.source_name = "vms";
  s.hosts = {*parse_pool_host("mon1.example.com:6789"), *parse_pool_host("mon2.example.com")};
  s.auth_user = "libvirt";
  s.secret_uuid = "2a5b08e4-3dae-4e0f-9d0a-5b1d2a3c4e5f";
  ASSERT_TRUE(validate_pool_spec(s));
  pugi::xml_document doc;
  auto pool = parse(doc, pool_xml(s));
  EXPECT_STREQ(pool.attribute("type").as_string(), "rbd");
  auto src = pool.child("source");
  EXPECT_STREQ(src.child_value("name"), "vms");
  auto h1 = src.child("host");
  EXPECT_STREQ(h1.attribute("name").as_string(), "mon1.example.com");
  EXPECT_EQ(h1.attribute("port").as_int(), 6789);
  EXPECT_STREQ(h1.next_sibling("host").attribute("name").as_string(), "mon2.example.com");
  auto auth = src.child("auth");
  EXPECT_STREQ(auth.attribute("type").as_string(), "ceph");
  EXPECT_STREQ(auth.attribute("username").as_string(), "libvirt");
  EXPECT_STREQ(auth.child("secret").attribute("uuid").as_string(), "2a5b08e4-3dae-4e0f-9d0a-5b1d2a3c4e5f");
}

TEST(PoolSpec, RefusesWhatEachTypeLacks) {
  struct Case {
    PoolSpec spec;
    std::string needle;
  };
  auto spec = [](PoolType t) {
    PoolSpec s;
    s.name = "p";
    s.type = t;
    return s;
  };
  std::vector<Case> cases;
  cases.push_back({spec(PoolType::Dir), "--path"});
  cases.push_back({spec(PoolType::Logical), "--source-name"});
  {
    auto s = spec(PoolType::Netfs);
    s.path = "/mnt/x";
    s.source_path = "/export";
    cases.push_back({s, "--source-host"});
  }
  {
    auto s = spec(PoolType::Netfs);
    s.hosts = {{"nas", 0}};
    s.path = "/mnt/x";
    cases.push_back({s, "--source-path"});
  }
  cases.push_back({spec(PoolType::Zfs), "--source-name"});
  {
    auto s = spec(PoolType::Rbd);
    s.source_name = "vms";
    cases.push_back({s, "--source-host"});
  }
  {
    auto s = spec(PoolType::Rbd);
    s.source_name = "vms";
    s.hosts = {{"mon", 0}};
    s.auth_user = "libvirt";
    cases.push_back({s, "--secret-uuid"});
  }
  {
    auto s = spec(PoolType::Dir);
    s.path = "relative/dir";
    cases.push_back({s, "not absolute"});
  }
  {
    auto s = spec(PoolType::Dir);
    s.name = "bad/name";
    s.path = "/x";
    cases.push_back({s, "invalid pool name"});
  }
  for (const auto& c : cases) {
    auto r = validate_pool_spec(c.spec);
    ASSERT_FALSE(r) << c.needle;
    EXPECT_EQ(r.error().kind(), ErrorKind::Validation);
    EXPECT_NE(r.error().to_string().find(c.needle), std::string::npos) << r.error().to_string();
  }
}

TEST(PoolSpec, ParsesTypesAndHosts) {
  EXPECT_EQ(*parse_pool_type("lvm"), PoolType::Logical);
  EXPECT_EQ(*parse_pool_type("nfs"), PoolType::Netfs);
  EXPECT_EQ(*parse_pool_type("ceph"), PoolType::Rbd);
  EXPECT_EQ(parse_pool_type("iscsi").error().kind(), ErrorKind::Validation);
  auto h = parse_pool_host("mon:3300");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->name, "mon");
  EXPECT_EQ(h->port, 3300);
  EXPECT_FALSE(parse_pool_host("mon:99999"));
  EXPECT_FALSE(parse_pool_host("mon:"));
  EXPECT_EQ(parse_pool_host("2001:db8::1")->name, "2001:db8::1");
}

TEST(VolumeXml, OverlayHasBackingStore) {
  VolumeSpec s;
  s.name = "web_boot";
  s.capacity = 50ull << 30;
  s.backing = BackingStore{"/var/lib/libvirt/images/foundry/images/debian-12.qcow2", VolumeFormat::Qcow2};
  pugi::xml_document doc;
  auto vol = parse(doc, volume_xml(s));
  EXPECT_STREQ(vol.child_value("name"), "web_boot");
  EXPECT_STREQ(vol.child("capacity").attribute("unit").as_string(), "bytes");
  EXPECT_EQ(vol.child("capacity").text().as_ullong(), 50ull << 30);
  EXPECT_EQ(vol.child("allocation").text().as_ullong(), 0u);
  EXPECT_STREQ(vol.child("target").child("format").attribute("type").as_string(), "qcow2");
  EXPECT_STREQ(vol.child("backingStore").child_value("path"),
               "/var/lib/libvirt/images/foundry/images/debian-12.qcow2");
  EXPECT_STREQ(vol.child("backingStore").child("format").attribute("type").as_string(), "qcow2");
}

TEST(VolumeXml, BlankRawHasNoBackingStore) {
  VolumeSpec s;
  s.name = "x_data-vdb";
  s.format = VolumeFormat::Raw;
  s.capacity = 1024;
  pugi::xml_document doc;
  auto vol = parse(doc, volume_xml(s));
  EXPECT_STREQ(vol.child("target").child("format").attribute("type").as_string(), "raw");
  EXPECT_FALSE(vol.child("backingStore"));
}

std::string qcow2_header(uint64_t virtual_size, uint64_t backing_offset = 0) {
  std::string h(512, '\0');
  h[0] = 'Q';
  h[1] = 'F';
  h[2] = 'I';
  h[3] = '\xfb';
  h[7] = 3;  // version 3
  for (int i = 0; i < 8; ++i) h[8 + i] = static_cast<char>((backing_offset >> (56 - 8 * i)) & 0xff);
  for (int i = 0; i < 8; ++i) h[24 + i] = static_cast<char>((virtual_size >> (56 - 8 * i)) & 0xff);
  return h;
}

TEST(ImageProbe, DetectsQcow2AndItsVirtualSize) {
  auto p = probe_image_header(qcow2_header(10ull << 30), 200000, "x");
  ASSERT_TRUE(p) << p.error().to_string();
  EXPECT_EQ(p->format, ImageFormat::Qcow2);
  EXPECT_EQ(p->virtual_size, 10ull << 30);
  EXPECT_FALSE(p->has_backing_file);
  EXPECT_TRUE(probe_image_header(qcow2_header(1, 0x200), 1024, "x")->has_backing_file);
}

TEST(ImageProbe, RawNeedsTheBootSignatureAt510) {
  std::string mbr(512, '\0');
  mbr[510] = '\x55';
  mbr[511] = '\xaa';
  auto p = probe_image_header(mbr, 1 << 20, "disk.raw");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->format, ImageFormat::Raw);
  EXPECT_EQ(p->virtual_size, 1u << 20);

  std::string zeros(512, '\0');
  auto r = probe_image_header(zeros, 512, "blank.raw");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::Validation);
  EXPECT_NE(r.error().message().find("not a bootable disk image"), std::string::npos);
  // Swapped bytes are not the signature; too short files neither.
  zeros[510] = '\xaa';
  zeros[511] = '\x55';
  EXPECT_FALSE(probe_image_header(zeros, 512, "x"));
  EXPECT_FALSE(probe_image_header(std::string(100, '\0'), 100, "x"));
  EXPECT_FALSE(probe_image_header("QFI", 3, "x"));
}

TEST(ImageName, MustCarryTheDetectedFormatsExtension) {
  EXPECT_TRUE(check_image_name("debian-12.qcow2", ImageFormat::Qcow2));
  EXPECT_TRUE(check_image_name("ubuntu-24.04.raw", ImageFormat::Raw));
  EXPECT_TRUE(check_image_name("Fedora-43.QCOW2", ImageFormat::Qcow2));

  auto no_ext = check_image_name("fedora-43", ImageFormat::Qcow2);
  ASSERT_FALSE(no_ext);
  EXPECT_EQ(no_ext.error().kind(), ErrorKind::Validation);
  EXPECT_NE(no_ext.error().message().find("must have a .qcow2 or .raw extension"), std::string::npos);
  EXPECT_NE(no_ext.error().hint().find("fedora-43.qcow2"), std::string::npos);
  EXPECT_FALSE(check_image_name("fedora-43.img", ImageFormat::Qcow2));

  auto mismatch = check_image_name("fedora-43.raw", ImageFormat::Qcow2);
  ASSERT_FALSE(mismatch);
  EXPECT_NE(mismatch.error().message().find("format mismatch"), std::string::npos);
  EXPECT_NE(mismatch.error().hint().find("fedora-43.qcow2"), std::string::npos);
  EXPECT_FALSE(check_image_name("ubuntu.qcow2", ImageFormat::Raw));

  for (auto bad : {"", ".qcow2", "a/b.qcow2", "a b.qcow2", "-x.qcow2"})
    EXPECT_FALSE(check_image_name(bad, ImageFormat::Qcow2)) << bad;
}

TEST(ImageName, SourceFilesNamedForAFormatMustMatchIt) {
  EXPECT_TRUE(check_source_name("/tmp/debian.qcow2", ImageFormat::Qcow2));
  EXPECT_TRUE(check_source_name("/tmp/ubuntu.img", ImageFormat::Qcow2));  // .img claims nothing
  EXPECT_TRUE(check_source_name("https://example.com/a/debian.qcow2?x=1", ImageFormat::Qcow2));
  auto r = check_source_name("/tmp/misnamed.raw", ImageFormat::Qcow2);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::Validation);
  EXPECT_NE(r.error().message().find("format mismatch"), std::string::npos);
  EXPECT_FALSE(check_source_name("http://h/x.qcow2#frag", ImageFormat::Raw));
}

TEST(Checksum, NeedsSha256PrefixAnd64HexDigits) {
  std::string hex(64, 'A');
  auto ok = parse_checksum("sha256:" + hex);
  ASSERT_TRUE(ok);
  EXPECT_EQ(*ok, std::string(64, 'a'));
  EXPECT_TRUE(parse_checksum("SHA256:" + std::string(64, '0')));
  for (auto bad : {std::string(64, 'a'), "md5:" + std::string(32, 'a'), "sha256:" + std::string(63, 'a'),
                   "sha256:" + std::string(63, 'a') + "g"}) {
    auto r = parse_checksum(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().kind(), ErrorKind::Validation);
  }
}

TEST(DownloadUrl, OnlyHttpHttpsAndFile) {
  EXPECT_TRUE(check_download_url("http://127.0.0.1/x.qcow2"));
  EXPECT_TRUE(check_download_url("https://example.com/x.qcow2"));
  EXPECT_TRUE(check_download_url("file:///tmp/x.qcow2"));
  for (auto bad : {"ftp://example.com/x", "/tmp/x.qcow2", "scp://h/x", "gopher://h"}) {
    auto r = check_download_url(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().kind(), ErrorKind::Validation);
  }
}

TEST(ConnectionHint, NamesTheSocketAndHowToStartTheDaemon) {
  EXPECT_EQ(socket_for_uri("qemu:///system"), "/var/run/libvirt/libvirt-sock");
  EXPECT_EQ(socket_for_uri("qemu+unix:///system?socket=/tmp/s.sock"), "/tmp/s.sock");
  EXPECT_EQ(socket_for_uri("qemu+ssh://root@host/system"), "");
  EXPECT_EQ(socket_for_uri("test:///default"), "");
  auto h = connection_hint("qemu:///system");
  EXPECT_NE(h.find("is libvirtd running?"), std::string::npos);
  EXPECT_NE(h.find("/var/run/libvirt/libvirt-sock"), std::string::npos);
  EXPECT_NE(h.find("virtlogd -d; libvirtd -d"), std::string::npos);
  auto r = connection_hint("qemu+ssh://root@hv1.example.com/system");
  EXPECT_NE(r.find("root@hv1.example.com"), std::string::npos);
}

TEST(Connection, FailureIsAConnectionErrorWithHintAndDetail) {
  auto c = Connection::open("qemu+unix:///system?socket=/nonexistent/foundry-test.sock");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().kind(), ErrorKind::Connection);
  EXPECT_EQ(c.error().exit_code(), 3);
  EXPECT_NE(c.error().message().find("cannot connect to libvirt"), std::string::npos);
  EXPECT_NE(c.error().hint().find("/nonexistent/foundry-test.sock"), std::string::npos);
  EXPECT_NE(c.error().detail().find("libvirt:"), std::string::npos);
}

}  // namespace
}  // namespace foundry::virt
