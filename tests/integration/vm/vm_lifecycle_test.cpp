// VM create / destroy / list against libvirt's in-process test driver
// (test:///default): the real libvirt library and its XML parsing, storage
// and domain state machine, with no daemon and no root. Each test opens one
// connection (every connection to test:///default starts fresh).
//
// The test driver has no virStorageVolUpload; the ISO upload goes through the
// StorageManager's uploader seam, recorded here. The real stream upload is
// covered by the e2e tests against libvirtd.
#include <gtest/gtest.h>

#include <map>

#include "foundry/cloudinit/cloudinit.h"
#include "foundry/cloudinit/iso.h"
#include "foundry/config/vm_config.h"
#include "foundry/virt/libvirt_hypervisor.h"
#include "foundry/virt/vm.h"

namespace foundry::virt {
namespace {

// Forwards to the real hypervisor, failing the one operation named in
// fail_at ("create_volume:web_data-vdb"), so rollback is exercised against
// real libvirt state.
class FailAt final : public Hypervisor {
 public:
  FailAt(Hypervisor& inner, std::string fail_at) : in_(inner), fail_at_(std::move(fail_at)) {}
  std::vector<std::string> calls;

  Result<bool> domain_exists(const std::string& n) override { return in_.domain_exists(n); }
  Result<DomainFacts> domain_info(const std::string& n) override { return in_.domain_info(n); }
  Result<std::vector<DomainFacts>> list_domains(bool a) override { return in_.list_domains(a); }
  Status define_domain(const std::string& xml) override {
    FOUNDRY_TRY(check("define_domain"));
    return in_.define_domain(xml);
  }
  Status undefine_domain(const std::string& n) override { return in_.undefine_domain(n); }
  Status set_autostart(const std::string& n, bool on) override {
    FOUNDRY_TRY(check("set_autostart"));
    return in_.set_autostart(n, on);
  }
  Status start_domain(const std::string& n) override {
    FOUNDRY_TRY(check("start_domain"));
    return in_.start_domain(n);
  }
  Status shutdown_domain(const std::string& n) override { return in_.shutdown_domain(n); }
  Status destroy_domain(const std::string& n) override { return in_.destroy_domain(n); }
  Result<bool> pool_exists(const std::string& p) override { return in_.pool_exists(p); }
  Result<bool> ensure_pool(const std::string& p) override {
    FOUNDRY_TRY(check("ensure_pool:" + p));
    return in_.ensure_pool(p);
  }
  Status delete_empty_pool(const std::string& p) override { return in_.delete_empty_pool(p); }
  Result<std::optional<VolumeDetails>> find_volume(const std::string& p, const std::string& n) override {
    return in_.find_volume(p, n);
  }
  Result<std::optional<VolumeDetails>> find_volume_by_path(const std::string& path) override {
    return in_.find_volume_by_path(path);
  }
  Status create_volume(const std::string& p, const VolumeSpec& s) override {
    FOUNDRY_TRY(check("create_volume:" + s.name));
    return in_.create_volume(p, s);
  }
  Status create_volume_from_bytes(const std::string& p, const std::string& n, const std::string& b) override {
    FOUNDRY_TRY(check("create_volume_from_bytes:" + n));
    return in_.create_volume_from_bytes(p, n, b);
  }
  Status delete_volume(const std::string& p, const std::string& n) override { return in_.delete_volume(p, n); }
  Result<std::vector<std::string>> list_bridges() override { return std::vector<std::string>{"br0"}; }

 private:
  Status check(const std::string& op) {
    calls.push_back(op);
    if (op == fail_at_) return fail(Error(ErrorKind::Operation, "injected failure at " + op));
    return ok();
  }
  Hypervisor& in_;
  std::string fail_at_;
};

constexpr const char* kVmYaml = R"(name: Web
vcpus: 2
memory_gib: 1
boot_disk:
  size_gb: 8
  image: debian-12
data_disks:
  - device: vdb
    size_gb: 2
network_interfaces:
  - ip: 192.0.2.10/24
    gateway: 192.0.2.1
    bridge: br0
cloud_init:
  fqdn: web.example.com
accelerator: qemu
firmware: bios
)";

class VmOnTestDriver : public ::testing::Test {
 protected:
  void SetUp() override {
    auto hv = open_libvirt_hypervisor("test:///default", "/foundry-test");
    ASSERT_TRUE(hv) << hv.error().to_string();
    hv_ = std::move(*hv);
    hv_->storage().set_uploader([this](Connection&, Volume& vol, const ReadFn& read, uint64_t total,
                                       const ProgressFn&) -> Status {
      std::string got(total, '\0');
      size_t off = 0;
      while (off < total) {
        auto n = FOUNDRY_TRY(read(got.data() + off, total - off));
        if (n == 0) break;
        off += n;
      }
      uploads_[vol.name()] = got.substr(0, off);
      return ok();
    });
    // A base image in the image pool, as `foundry image import` leaves it.
    ASSERT_TRUE(hv_->ensure_pool("foundry-images"));
    VolumeSpec base{"debian-12", VolumeFormat::Qcow2, 2ull << 30, 0, std::nullopt};
    ASSERT_TRUE(hv_->create_volume("foundry-images", base));
    auto vm = config::load_vm_yaml(kVmYaml, "web.yaml");
    ASSERT_TRUE(vm) << vm.error().to_string();
    vm_ = *vm;
  }

  Result<VmPlan> plan() {
    auto base = FOUNDRY_TRY(resolve_base_image(*hv_, vm_, "foundry-images"));
    auto p = FOUNDRY_TRY(plan_vm(vm_, Firmware{}, base.path, base.format));
    auto docs = FOUNDRY_TRY(cloudinit::generate(vm_));
    auto iso = FOUNDRY_TRY(cloudinit::build_cloud_init_iso(docs));
    p.cloudinit_iso.assign(iso.begin(), iso.end());
    return p;
  }

  // Everything of VM "web" that libvirt knows about.
  std::vector<std::string> leftovers() {
    std::vector<std::string> out;
    if (hv_->domain_exists("web").value_or(true)) out.push_back("domain web");
    if (hv_->pool_exists("foundry-vms").value_or(false)) {
      for (auto n : {"web_boot", "web_data-vdb", "web_cloudinit"}) {
        auto v = hv_->find_volume("foundry-vms", n);
        if (!v || *v) out.push_back(std::string("volume ") + n);
      }
      out.push_back("pool foundry-vms");
    }
    return out;
  }

  std::unique_ptr<LibvirtHypervisor> hv_;
  config::VmConfig vm_;
  std::map<std::string, std::string> uploads_;
};

TEST_F(VmOnTestDriver, CreateListInfoDestroy) {
  auto p = plan();
  ASSERT_TRUE(p) << p.error().to_string();
  CreateOptions o;
  o.verify_bridges = false;
  auto st = create_vm(*hv_, *p, o);
  ASSERT_TRUE(st) << st.error().to_string() << " / " << st.error().detail();

  auto info = hv_->domain_info("web");
  ASSERT_TRUE(info);
  EXPECT_EQ(info->state, DomainState::Running);
  EXPECT_EQ(info->vcpus, 2u);
  EXPECT_EQ(info->memory_kib, 1024u * 1024u);
  auto boot = hv_->find_volume("foundry-vms", "web_boot").value();
  ASSERT_TRUE(boot);
  EXPECT_EQ(boot->capacity, 8ull << 30);
  EXPECT_FALSE(boot->backing_path.empty()) << "boot disk must be an overlay on the base image";
  ASSERT_TRUE(hv_->find_volume("foundry-vms", "web_data-vdb").value());
  EXPECT_EQ(uploads_["web_cloudinit"], p->cloudinit_iso);

  auto vms = list_vms(*hv_, true).value();
  auto it = std::find_if(vms.begin(), vms.end(), [](auto& v) { return v.name == "web"; });
  ASSERT_NE(it, vms.end());
  EXPECT_EQ(it->addresses, (std::vector<std::string>{"192.0.2.10/24"})) << "metadata survives libvirt's round trip";
  EXPECT_EQ(it->pool, "foundry-vms");

  DestroyOptions d;
  d.shutdown_timeout_s = 1;
  auto ds = destroy_vm(*hv_, "web", "foundry-vms", d);
  ASSERT_TRUE(ds) << ds.error().to_string();
  auto left = leftovers();
  EXPECT_EQ(left, (std::vector<std::string>{"pool foundry-vms"})) << "only the (shared) pool stays";
}

TEST_F(VmOnTestDriver, FailureAtEachStepLeavesNothing) {
  for (std::string step : {"ensure_pool:foundry-vms", "create_volume:web_boot", "create_volume:web_data-vdb",
                           "create_volume_from_bytes:web_cloudinit", "define_domain", "set_autostart",
                           "start_domain"}) {
    auto p = plan();
    ASSERT_TRUE(p);
    FailAt f(*hv_, step);
    CreateOptions o;
    auto st = create_vm(f, *p, o);
    ASSERT_FALSE(st) << step;
    EXPECT_NE(st.error().to_string().find("injected failure at " + step), std::string::npos);
    EXPECT_NE(std::find(f.calls.begin(), f.calls.end(), step), f.calls.end()) << step << " was never reached";
    EXPECT_TRUE(leftovers().empty()) << step << ": left " << ::testing::PrintToString(leftovers());
  }
}

TEST_F(VmOnTestDriver, UploadFailureLeavesNothing) {
  hv_->storage().set_uploader([](Connection&, Volume&, const ReadFn&, uint64_t, const ProgressFn&) -> Status {
    return fail(ErrorKind::Storage, "stream broke");
  });
  auto p = plan();
  ASSERT_TRUE(p);
  CreateOptions o;
  o.verify_bridges = false;
  auto st = create_vm(*hv_, *p, o);
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().to_string().find("stream broke"), std::string::npos) << st.error().to_string();
  EXPECT_TRUE(leftovers().empty()) << ::testing::PrintToString(leftovers());
}

TEST_F(VmOnTestDriver, TakenNameAndMissingImageTouchNothing) {
  auto p = plan();
  ASSERT_TRUE(p);
  CreateOptions o;
  o.verify_bridges = false;
  ASSERT_TRUE(create_vm(*hv_, *p, o));
  auto again = create_vm(*hv_, *p, o);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().exit_code(), 2);

  vm_.name = "other";
  vm_.boot_disk.image = "fedora-43";
  auto r = resolve_base_image(*hv_, vm_, "foundry-images");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().exit_code(), 5);
  EXPECT_FALSE(hv_->find_volume("foundry-vms", "other_boot").value());
}

TEST_F(VmOnTestDriver, DestroyCleansHalfMadeVm) {
  ASSERT_TRUE(hv_->ensure_pool("foundry-vms"));
  ASSERT_TRUE(hv_->create_volume("foundry-vms", VolumeSpec{"web_boot", VolumeFormat::Qcow2, 1ull << 30, 0, {}}));
  ASSERT_TRUE(hv_->create_volume("foundry-vms", VolumeSpec{"web_cloudinit", VolumeFormat::Raw, 1 << 20, 0, {}}));
  ASSERT_TRUE(destroy_vm(*hv_, "web", "foundry-vms", {}));
  EXPECT_EQ(leftovers(), (std::vector<std::string>{"pool foundry-vms"}));
  auto again = destroy_vm(*hv_, "web", "foundry-vms", {});
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().exit_code(), 4);
}

}  // namespace
}  // namespace foundry::virt
