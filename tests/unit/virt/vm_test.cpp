#include "foundry/virt/vm.h"

#include <gtest/gtest.h>

#include "fake_hypervisor.h"

using namespace foundry;
using namespace foundry::virt;
using foundry::virt::testing::FakeHypervisor;

namespace {

VolumeDetails vol(const std::string& name, const std::string& path, const char* format = "qcow2") {
  VolumeDetails v;
  v.name = name;
  v.path = path;
  v.format = format;
  v.capacity = 1;
  return v;
}

config::VmConfig web_vm() {
  config::VmConfig vm;
  vm.name = "web";
  vm.vcpus = 2;
  vm.memory_gib = 4;
  vm.boot_disk.size_gb = 20;
  vm.boot_disk.image = "debian-12";
  vm.data_disks = {{"vdb", 10}, {"vdc", 5}};
  config::NetworkInterface a;
  a.ip = net::Ipv4Cidr::parse("192.0.2.10/24").value();
  a.gateway = net::Ipv4::parse("192.0.2.1").value();
  a.bridge = "br0";
  a.default_route = true;
  vm.network_interfaces = {a};
  vm.cloud_init = config::CloudInit{};
  vm.cloud_init->fqdn = "web.example.com";
  return vm;
}

struct World {
  FakeHypervisor hv;
  World() {
    hv.pools["foundry-images"]["debian-12"] = vol("debian-12", "/img/debian-12", "qcow2");
  }
  VmPlan plan(const config::VmConfig& vm = web_vm()) {
    auto base = resolve_base_image(hv, vm, "foundry-images");
    EXPECT_TRUE(base) << base.error().to_string();
    auto p = plan_vm(vm, Firmware{}, base->path, base->format);
    EXPECT_TRUE(p);
    p->cloudinit_iso = "ISO-BYTES";
    return *p;
  }
};

}  // namespace

TEST(CreateVm, MakesEverythingInOrderWithProgress) {
  World w;
  std::vector<std::string> steps;
  CreateOptions o;
  o.on_step = [&](const std::string& s) { steps.push_back(s); };
  ASSERT_TRUE(create_vm(w.hv, w.plan(), o));
  EXPECT_EQ(steps, (std::vector<std::string>{"Configuration validated", "Storage created (20 GB boot + 15 GB data)",
                                             "Cloud-init ISO generated", "Domain defined", "VM started"}));
  auto& vols = w.hv.pools["foundry-vms"];
  ASSERT_EQ(vols.size(), 4u);
  EXPECT_EQ(vols["web_boot"].backing_path, "/img/debian-12");
  EXPECT_EQ(vols["web_boot"].capacity, 20ull << 30);
  EXPECT_EQ(vols["web_data-vdb"].capacity, 10ull << 30);
  EXPECT_EQ(w.hv.uploads["foundry-vms/web_cloudinit"], "ISO-BYTES");
  EXPECT_TRUE(w.hv.domains["web"].running);
  EXPECT_TRUE(w.hv.domains["web"].autostart);
}

// The acceptance rule: a failure at any step leaves nothing this run made.
TEST(CreateVm, FailureAtEveryStepLeavesNothingBehind) {
  for (std::string step : {"ensure_pool:foundry-vms", "create_volume:web_boot", "create_volume:web_data-vdb",
                           "create_volume:web_data-vdc", "create_volume_from_bytes:web_cloudinit",
                           "define_domain:web", "set_autostart:web", "start_domain:web"}) {
    World w;
    auto plan = w.plan();
    w.hv.fail_at = step;
    auto st = create_vm(w.hv, plan, {});
    ASSERT_FALSE(st) << step;
    EXPECT_NE(st.error().to_string().find("injected failure"), std::string::npos) << st.error().to_string();
    EXPECT_NE(st.error().to_string().find("create VM 'web'"), std::string::npos);
    EXPECT_TRUE(w.hv.domains.empty()) << step;
    EXPECT_EQ(w.hv.pools.count("foundry-vms"), 0u) << step << ": the pool this run created must go too";
    EXPECT_EQ(w.hv.pools["foundry-images"].size(), 1u) << "the base image is never touched";
  }
}

TEST(CreateVm, ExistingPoolIsKeptOnFailure) {
  World w;
  w.hv.pools["foundry-vms"]["other_boot"] = vol("other_boot", "/p/other_boot", "qcow2");
  auto plan = w.plan();
  w.hv.fail_at = "start_domain:web";
  ASSERT_FALSE(create_vm(w.hv, plan, {}));
  ASSERT_EQ(w.hv.pools.count("foundry-vms"), 1u);
  EXPECT_EQ(w.hv.pools["foundry-vms"].size(), 1u);
}

TEST(CreateVm, TakenNameIsAValidationErrorAndTouchesNothing) {
  World w;
  w.hv.domains["web"].xml = "<domain><name>web</name></domain>";
  auto st = create_vm(w.hv, w.plan(), {});
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().exit_code(), 2);
  EXPECT_NE(st.error().hint().find("foundry vm destroy web"), std::string::npos);
  EXPECT_EQ(w.hv.pools.count("foundry-vms"), 0u);
}

TEST(CreateVm, UnknownBridgeSuggestsClosest) {
  World w;
  w.hv.bridges = {"br0", "br1", "virbr0", "lan"};
  auto vm = web_vm();
  vm.network_interfaces[0].bridge = "bro";
  auto st = create_vm(w.hv, w.plan(vm), {});
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().exit_code(), 2);
  EXPECT_NE(st.error().to_string().find("bridge 'bro' does not exist"), std::string::npos);
  EXPECT_NE(st.error().hint().find("did you mean br0"), std::string::npos) << st.error().hint();
  EXPECT_EQ(w.hv.pools.count("foundry-vms"), 0u);
}

TEST(CreateVm, LeftoverVolumeIsReportedBeforeAnythingIsMade) {
  World w;
  w.hv.pools["foundry-vms"]["web_data-vdc"] = vol("web_data-vdc", "/p/x", "qcow2");
  auto st = create_vm(w.hv, w.plan(), {});
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().exit_code(), 5);
  EXPECT_EQ(w.hv.pools["foundry-vms"].size(), 1u);
}

TEST(ResolveBaseImage, MissingImageSaysHowToImport) {
  World w;
  auto vm = web_vm();
  vm.boot_disk.image = "fedora-43";
  auto r = resolve_base_image(w.hv, vm, "foundry-images");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().exit_code(), 5);
  EXPECT_NE(r.error().hint().find("foundry image import FILE --name fedora-43"), std::string::npos);
  vm.boot_disk.image = "/img/debian-12";
  EXPECT_TRUE(resolve_base_image(w.hv, vm, "foundry-images"));
  vm.boot_disk.image = "/somewhere/else.qcow2";
  EXPECT_FALSE(resolve_base_image(w.hv, vm, "foundry-images"));
  FakeHypervisor empty;
  vm.boot_disk.image = "debian-12";
  auto r2 = resolve_base_image(empty, vm, "foundry-images");
  ASSERT_FALSE(r2);
  EXPECT_EQ(empty.pools.count("foundry-images"), 0u) << "looking must not create the image pool";
}

TEST(ResolveBaseImage, NameWithoutExtensionFindsTheImportedVolume) {
  // `foundry image import` names volumes NAME.qcow2 / NAME.raw; a VM file
  // says `image: NAME`, as examples/custom-pool-vm.yaml does.
  FakeHypervisor hv;
  hv.pools["foundry-images"]["debian-e2e.qcow2"] = vol("debian-e2e.qcow2", "/img/debian-e2e.qcow2", "qcow2");
  auto vm = web_vm();
  vm.boot_disk.image = "debian-e2e";
  auto r = resolve_base_image(hv, vm, "foundry-images");
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->path, "/img/debian-e2e.qcow2");
  vm.boot_disk.image = "debian-e2e.qcow2";
  EXPECT_TRUE(resolve_base_image(hv, vm, "foundry-images"));
  vm.boot_disk.image = "debian-e2e.raw";  // an explicit extension means exactly that volume
  auto r2 = resolve_base_image(hv, vm, "foundry-images");
  ASSERT_FALSE(r2);
  EXPECT_NE(r2.error().hint().find("--name debian-e2e.raw"), std::string::npos) << r2.error().hint();
}

TEST(DestroyVm, StopsUndefinesAndRemovesStorage) {
  World w;
  ASSERT_TRUE(create_vm(w.hv, w.plan(), {}));
  std::vector<std::string> steps;
  DestroyOptions o;
  o.on_step = [&](const std::string& s) { steps.push_back(s); };
  ASSERT_TRUE(destroy_vm(w.hv, "web", "", o));
  EXPECT_EQ(steps, (std::vector<std::string>{"VM stopped", "Domain undefined", "Storage removed (4 volumes)"}));
  EXPECT_TRUE(w.hv.domains.empty());
  EXPECT_TRUE(w.hv.pools["foundry-vms"].empty());
  EXPECT_EQ(std::count(w.hv.calls.begin(), w.hv.calls.end(), "destroy_domain:web"), 0)
      << "a guest that shuts down in time is not forced off";
}

TEST(DestroyVm, ForcesOffWhenShutdownIsIgnored) {
  World w;
  ASSERT_TRUE(create_vm(w.hv, w.plan(), {}));
  w.hv.ignore_shutdown = true;
  DestroyOptions o;
  o.shutdown_timeout_s = 1;
  ASSERT_TRUE(destroy_vm(w.hv, "web", "", o));
  EXPECT_EQ(std::count(w.hv.calls.begin(), w.hv.calls.end(), "destroy_domain:web"), 1);
  EXPECT_TRUE(w.hv.domains.empty());
}

TEST(DestroyVm, CleansHalfMadeVmAndReportsUnknown) {
  World w;
  w.hv.pools["foundry-vms"]["web_boot"] = vol("web_boot", "/p/web_boot", "qcow2");
  w.hv.pools["foundry-vms"]["web_cloudinit"] = vol("web_cloudinit", "/p/web_ci", "raw");
  ASSERT_TRUE(destroy_vm(w.hv, "web", "", {}));
  EXPECT_TRUE(w.hv.pools["foundry-vms"].empty());
  auto st = destroy_vm(w.hv, "ghost", "", {});
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().exit_code(), 4);
  EXPECT_NE(st.error().to_string().find("VM 'ghost' not found"), std::string::npos);
}

TEST(ListVms, ReadsFoundryMetadata) {
  World w;
  ASSERT_TRUE(create_vm(w.hv, w.plan(), {}));
  auto vm2 = web_vm();
  vm2.name = "db";
  vm2.network_interfaces[0].ip = net::Ipv4Cidr::parse("192.0.2.11/24").value();
  CreateOptions o;
  o.start = false;
  ASSERT_TRUE(create_vm(w.hv, w.plan(vm2), o));
  auto running = list_vms(w.hv, false).value();
  ASSERT_EQ(running.size(), 1u);
  auto all = list_vms(w.hv, true).value();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].name, "db");
  EXPECT_EQ(all[0].state, DomainState::ShutOff);
  EXPECT_EQ(all[1].addresses, (std::vector<std::string>{"192.0.2.10/24"}));
  EXPECT_EQ(all[1].pool, "foundry-vms");
  EXPECT_EQ(all[1].vcpus, 2u);
  EXPECT_EQ(all[1].memory_kib, 4ull << 20);
}

TEST(ClosestNames, OnlyPlausibleTypos) {
  EXPECT_EQ(closest_names("br0", {"br1", "eth0", "virbr0", "br0x"}), (std::vector<std::string>{"br0x", "br1"}));
  EXPECT_TRUE(closest_names("bridge-prod", {"lo"}).empty());
}
