#include "foundry/virt/domain_xml.h"

#include <unistd.h>

#include <filesystem>

#include <gtest/gtest.h>
#include <pugixml.hpp>

#include "foundry/common/file.h"
#include "foundry/common/subprocess.h"

using namespace foundry;
using namespace foundry::virt;
namespace fs = std::filesystem;

namespace {

config::VmConfig seed_vm() {
  config::VmConfig vm;
  vm.name = "my-vm";
  vm.vcpus = 4;
  vm.memory_gib = 8;
  vm.boot_disk.size_gb = 50;
  vm.boot_disk.image = "/var/lib/libvirt/images/fedora-42.qcow2";
  vm.data_disks = {{"vdb", 100}, {"vdc", 200}};
  config::NetworkInterface a;
  a.ip = net::Ipv4Cidr::parse("10.55.22.22/24").value();
  a.gateway = net::Ipv4::parse("10.55.22.1").value();
  a.bridge = "br0";
  a.default_route = true;
  config::NetworkInterface b;
  b.ip = net::Ipv4Cidr::parse("192.168.1.100/24").value();
  b.gateway = net::Ipv4::parse("192.168.1.1").value();
  b.bridge = "br1";
  vm.network_interfaces = {a, b};
  vm.cloud_init = config::CloudInit{};
  vm.cloud_init->fqdn = "my-vm.example.com";
  return vm;
}

DomainOptions uefi() { return {{"/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd"}, true}; }

pugi::xml_document parse(const std::string& xml) {
  pugi::xml_document d;
  auto r = d.load_string(xml.c_str());
  EXPECT_TRUE(r) << r.description();
  return d;
}

}  // namespace

TEST(DomainXml, SeedShape) {
  auto doc = parse(domain_xml(seed_vm(), uefi()));
  auto dom = doc.child("domain");
  EXPECT_STREQ(dom.attribute("type").value(), "kvm");
  EXPECT_STREQ(dom.child_value("name"), "my-vm");
  EXPECT_STREQ(dom.child("memory").attribute("unit").value(), "GiB");
  EXPECT_STREQ(dom.child_value("memory"), "8");
  EXPECT_STREQ(dom.child_value("vcpu"), "4");
  EXPECT_STREQ(dom.child("cpu").attribute("mode").value(), "host-model");
  auto os = dom.child("os");
  EXPECT_STREQ(os.child("type").attribute("machine").value(), "q35");
  EXPECT_STREQ(os.child("loader").attribute("type").value(), "pflash");
  EXPECT_STREQ(os.child_value("loader"), "/usr/share/OVMF/OVMF_CODE_4M.fd");
  EXPECT_STREQ(os.child("boot").attribute("dev").value(), "hd");

  std::vector<std::string> disks;
  for (auto d : dom.child("devices").children("disk"))
    disks.push_back(std::string(d.attribute("device").value()) + ":" + d.child("source").attribute("pool").value() +
                    "/" + d.child("source").attribute("volume").value() + "@" + d.child("target").attribute("dev").value());
  EXPECT_EQ(disks, (std::vector<std::string>{"disk:foundry-vms/my-vm_boot@vda", "disk:foundry-vms/my-vm_data-vdb@vdb",
                                             "disk:foundry-vms/my-vm_data-vdc@vdc",
                                             "cdrom:foundry-vms/my-vm_cloudinit@sda"}));

  std::vector<std::string> nics;
  for (auto n : dom.child("devices").children("interface"))
    nics.push_back(std::string(n.child("mac").attribute("address").value()) + " " +
                   n.child("source").attribute("bridge").value() + " " + n.child("target").attribute("dev").value());
  EXPECT_EQ(nics, (std::vector<std::string>{"be:ef:0a:37:16:16 br0 vm0a371616", "be:ef:c0:a8:01:64 br1 vmc0a80164"}));
  EXPECT_TRUE(dom.child("devices").child("serial"));
  EXPECT_TRUE(dom.child("devices").child("console"));
}

TEST(DomainXml, QemuAcceleratorBiosAndNoCloudInit) {
  auto vm = seed_vm();
  vm.accelerator = config::Accelerator::Qemu;
  vm.cloud_init.reset();
  vm.storage_pool = "fast";
  auto doc = parse(domain_xml(vm, DomainOptions{{}, false}));
  auto dom = doc.child("domain");
  EXPECT_STREQ(dom.attribute("type").value(), "qemu");
  EXPECT_STREQ(dom.child("cpu").attribute("mode").value(), "maximum");
  EXPECT_FALSE(dom.child("os").child("loader"));
  for (auto d : dom.child("devices").children("disk")) {
    EXPECT_STRNE(d.attribute("device").value(), "cdrom");
    EXPECT_STREQ(d.child("source").attribute("pool").value(), "fast");
  }
}

TEST(DomainXml, SameInputSameBytes) { EXPECT_EQ(domain_xml(seed_vm(), uefi()), domain_xml(seed_vm(), uefi())); }

TEST(DomainXml, EscapesMarkupInValues) {
  auto vm = seed_vm();
  vm.source_file = "/tmp/a&b<c>.yaml";
  auto xml = domain_xml(vm, uefi());
  EXPECT_NE(xml.find("/tmp/a&amp;b&lt;c&gt;.yaml"), std::string::npos);
  parse(xml);
}

TEST(Firmware, ResolveOrder) {
  auto dir = fs::temp_directory_path() / ("foundry-fw-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  auto code = (dir / "OVMF_CODE_4M.fd").string();
  auto vars = (dir / "OVMF_VARS_4M.fd").string();
  auto vm = seed_vm();
  auto none = resolve_firmware(vm, {{code, vars}});
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().kind(), ErrorKind::Validation);
  EXPECT_NE(none.error().hint().find("firmware: bios"), std::string::npos);
  ASSERT_TRUE(write_file_atomic(code, "x"));
  auto only_code = resolve_firmware(vm, {{code, vars}});
  ASSERT_TRUE(only_code);
  EXPECT_EQ(only_code->vars_template, "");
  ASSERT_TRUE(write_file_atomic(vars, "x"));
  EXPECT_EQ(resolve_firmware(vm, {{code, vars}})->vars_template, vars);
  vm.firmware_path = code;
  EXPECT_EQ(resolve_firmware(vm, {})->vars_template, vars);
  vm.firmware_path = (dir / "missing.fd").string();
  EXPECT_FALSE(resolve_firmware(vm, {}));
  vm.firmware = config::Firmware::Bios;
  EXPECT_EQ(resolve_firmware(vm, {})->code, "");
  fs::remove_all(dir);
}

// libvirt's own RelaxNG schemas are the judge of validity.
TEST(DomainXml, PassesVirtXmlValidate) {
  if (find_program("virt-xml-validate").empty()) GTEST_SKIP() << "virt-xml-validate not installed (libvirt-clients)";
  auto dir = fs::temp_directory_path() / ("foundry-xml-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  auto vm = seed_vm();
  auto qemu = seed_vm();
  qemu.accelerator = config::Accelerator::Qemu;
  qemu.cpu_mode = config::CpuMode::HostPassthrough;
  int i = 0;
  for (const auto& [v, o] : std::vector<std::pair<config::VmConfig, DomainOptions>>{
           {vm, uefi()}, {qemu, DomainOptions{{}, false}}}) {
    auto path = (dir / ("d" + std::to_string(i++) + ".xml")).string();
    ASSERT_TRUE(write_file_atomic(path, domain_xml(v, o)));
    auto r = run({"virt-xml-validate", path, "domain"});
    ASSERT_TRUE(r);
    EXPECT_TRUE(r->ok()) << r->out << r->err;
  }
  fs::remove_all(dir);
}

// Issue 2: the domain XML of every example VM file passes libvirt's schema.
TEST(DomainXml, EveryExampleValidates) {
  if (find_program("virt-xml-validate").empty()) GTEST_SKIP() << "virt-xml-validate not installed (libvirt-clients)";
  auto dir = fs::temp_directory_path() / ("foundry-xml-ex-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  int n = 0;
  for (const auto& e : fs::directory_iterator(fs::path(FOUNDRY_SOURCE_DIR) / "examples")) {
    if (e.path().extension() != ".yaml" || e.path().filename() == "config.yaml" ||
        e.path().filename() == "cluster.yaml")  // a cluster file (issue 6), not a VM file
      continue;
    auto vm = config::load_vm_file(e.path().string());
    ASSERT_TRUE(vm) << e.path() << ": " << vm.error().to_string();
    auto xml = domain_xml(*vm, uefi());
    EXPECT_EQ(xml, domain_xml(*vm, uefi())) << "same file, same bytes";
    auto out = (dir / (e.path().stem().string() + ".xml")).string();
    ASSERT_TRUE(write_file_atomic(out, xml));
    auto r = run({"virt-xml-validate", out, "domain"});
    ASSERT_TRUE(r);
    EXPECT_TRUE(r->ok()) << e.path() << "\n" << r->out << r->err;
    ++n;
  }
  EXPECT_GE(n, 3) << "simple-vm, multi-disk-vm, custom-pool-vm";
  fs::remove_all(dir);
}
