// Storage against a real libvirtd (qemu:///system): what the test driver
// cannot do — stream uploads, qemu-img made overlays, directories on disk.
//
// The daemons are started when they are not running (virtlogd -d; libvirtd -d,
// after creating /var/log/libvirt and /run/libvirt) and left running for the
// other tests. Every test uses its own pool names (fe2e-<pid>-<n>-...) and a
// temporary base path, and removes its pools, volumes and directories also
// when it fails.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "../../integration/virt/test_support.h"
#include "foundry/common/file.h"
#include "foundry/common/subprocess.h"
#include "foundry/common/unique_fd.h"
#include "foundry/virt/download.h"
#include "foundry/virt/image.h"
#include "foundry/virt/storage.h"

namespace foundry::virt {
namespace {

namespace fs = std::filesystem;
using foundry::testing::HttpServer;
using foundry::testing::TempDir;
using foundry::testing::ensure_libvirtd;

const std::string kUri = "qemu:///system";
const std::string kBinary = std::string(FOUNDRY_BINARY_DIR) + "/src/cli/foundry";

// Removes every pool whose name starts with prefix: volumes, pool, its dir.
void remove_pools(Connection& conn, const std::string& prefix) {
  auto pools = conn.pools();
  if (!pools) return;
  for (auto& p : *pools) {
    if (p.name().rfind(prefix, 0) != 0) continue;
    if (p.is_active().value_or(false)) {
      if (auto vols = p.volumes())
        for (auto& v : *vols) (void)v.remove();
      (void)p.stop();
    }
    (void)p.delete_storage();
    (void)p.undefine();
  }
}

std::string read_all(const std::string& path) {
  auto r = read_file(path);
  return r ? *r : std::string("<unreadable: " + r.error().to_string() + ">");
}

class RealLibvirtd : public ::testing::Test {
 protected:
  void SetUp() override {
    static const std::string why = ensure_libvirtd();
    if (!why.empty()) GTEST_SKIP() << why;
    if (find_program("qemu-img").empty()) GTEST_SKIP() << "qemu-img (qemu-utils) is needed to make test images";
    static int counter = 0;
    prefix_ = fmt::format("fe2e-{}-{}-", ::getpid(), counter++);
    auto c = Connection::open(kUri);
    ASSERT_TRUE(c) << c.error().to_string();
    conn_.emplace(std::move(*c));
    cfg_.image_pool = prefix_ + "images";
    cfg_.vm_pool = prefix_ + "vms";
    cfg_.base_path = (dir_.path / "pools").string();
    sm_.emplace(*conn_, cfg_);
  }

  void TearDown() override {
    if (conn_) remove_pools(*conn_, prefix_);
    if (conn_) {
      auto left = conn_->pools();
      ASSERT_TRUE(left);
      for (auto& p : *left) EXPECT_NE(p.name().rfind(prefix_, 0), 0u) << "left behind: " << p.name();
    }
  }

  // A real qcow2 made by qemu-img, with a recognisable cluster of data.
  std::string make_qcow2(const std::string& name, const std::string& size) {
    auto path = (dir_.path / name).string();
    auto r = run_checked({"qemu-img", "create", "-q", "-f", "qcow2", path, size});
    EXPECT_TRUE(r) << r.error().to_string();
    return path;
  }

  RunResult cli(std::vector<std::string> args) {
    args.insert(args.begin(), {kBinary, "--connect", kUri});
    RunOptions o;
    o.timeout = std::chrono::seconds(120);
    o.extra_env = {"FOUNDRY_IMAGE_POOL=" + cfg_.image_pool, "FOUNDRY_VM_POOL=" + cfg_.vm_pool,
                   "FOUNDRY_STORAGE_PATH=" + cfg_.base_path};
    auto r = run(args, o);
    EXPECT_TRUE(r) << r.error().to_string();
    return r ? *r : RunResult{};
  }

  TempDir dir_;
  std::string prefix_;
  StorageConfig cfg_;
  std::optional<Connection> conn_;
  std::optional<StorageManager> sm_;
};

TEST_F(RealLibvirtd, ImageImportStreamsTheExactBytesIntoADirPool) {
  auto src = make_qcow2("debian-test.qcow2", "64M");
  auto r = cli({"image", "import", src, "--name", "debian-test.qcow2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("Imported image 'debian-test.qcow2' (qcow2, 64 MiB virtual"), std::string::npos) << r.out;

  // The pool was made on first use, at the configured base path.
  auto pool = sm_->pool_details(cfg_.image_pool);
  ASSERT_TRUE(pool) << pool.error().to_string();
  EXPECT_EQ(pool->summary.path, cfg_.base_path + "/images");
  EXPECT_TRUE(pool->summary.autostart);
  ASSERT_EQ(pool->volumes.size(), 1u);
  const auto& v = pool->volumes[0];
  EXPECT_EQ(v.path, cfg_.base_path + "/images/debian-test.qcow2");
  EXPECT_EQ(v.format, "qcow2");  // libvirt probed the uploaded bytes
  EXPECT_EQ(v.capacity, 64u << 20);
  EXPECT_EQ(read_all(v.path), read_all(src));

  auto j = cli({"-o", "json", "image", "list"});
  ASSERT_EQ(j.exit_code, 0) << j.err;
  auto arr = nlohmann::json::parse(j.out);
  ASSERT_EQ(arr.size(), 1u);
  EXPECT_EQ(arr[0]["format"], "qcow2");
  EXPECT_EQ(arr[0]["libvirt_format"], "qcow2");
}

TEST_F(RealLibvirtd, BootDiskCloudInitAndDataDiskOnDisk) {
  ImageStore images(*sm_);
  auto imported = images.import_file(make_qcow2("base.qcow2", "64M"), "base.qcow2");
  ASSERT_TRUE(imported) << imported.error().to_string();
  auto base = images.resolve("base");
  ASSERT_TRUE(base);

  auto boot = sm_->create_overlay(cfg_.vm_pool, VolumeName::boot("web"), *base, 128u << 20,
                                  to_volume_format(imported->format));
  ASSERT_TRUE(boot) << boot.error().to_string();
  auto info = run_checked({"qemu-img", "info", "--output=json", "-U", boot->path()});
  ASSERT_TRUE(info) << info.error().to_string();
  auto qi = nlohmann::json::parse(info->out);
  EXPECT_EQ(qi["format"], "qcow2");
  EXPECT_EQ(qi["virtual-size"], 128u << 20);
  EXPECT_EQ(qi["backing-filename"], imported->path);
  EXPECT_EQ(qi["backing-filename-format"], "qcow2");

  std::string iso(376832, '\0');
  for (size_t i = 0; i < iso.size(); ++i) iso[i] = static_cast<char>((i * 31) % 256);
  auto ci = sm_->create_from_bytes(cfg_.vm_pool, VolumeName::cloudinit("web"), iso);
  ASSERT_TRUE(ci) << ci.error().to_string();
  EXPECT_EQ(read_all(ci->path()), iso);

  auto data = sm_->create_blank(cfg_.vm_pool, VolumeName::data("web", "vdb"), 32u << 20);
  ASSERT_TRUE(data) << data.error().to_string();

  auto st = cli({"-o", "json", "storage", "status"});
  ASSERT_EQ(st.exit_code, 0) << st.err;
  auto sj = nlohmann::json::parse(st.out);
  bool found = false;
  for (const auto& vm : sj["vms"]) {
    if (vm["vm"] != "web") continue;
    found = true;
    EXPECT_EQ(vm["volumes"].size(), 3u);
    EXPECT_EQ(vm["image"], "base.qcow2");
    EXPECT_EQ(vm["capacity"], (128u << 20) + iso.size() + (32u << 20));
  }
  EXPECT_TRUE(found) << st.out;

  // The image is in use: refused with exit 5, kept.
  auto del = cli({"image", "delete", "base"});
  EXPECT_EQ(del.exit_code, 5) << del.err;
  EXPECT_TRUE(fs::exists(imported->path));
  // Once the VM's volumes are gone, it goes.
  for (auto name : {VolumeName::boot("web"), VolumeName::cloudinit("web"), VolumeName::data("web", "vdb")})
    EXPECT_TRUE(*sm_->delete_volume(cfg_.vm_pool, name));
  EXPECT_EQ(cli({"image", "delete", "base"}).exit_code, 0);
  EXPECT_FALSE(fs::exists(imported->path));
}

TEST_F(RealLibvirtd, PullOverHttpWithChecksum) {
  if (find_program("python3").empty()) GTEST_SKIP() << "python3 is needed for the test HTTP server";
  auto src = make_qcow2("fedora-test.qcow2", "32M");
  HttpServer server(dir_.path.string());
  ASSERT_GT(server.port(), 0);
  UniqueFd fd(::open(src.c_str(), O_RDONLY | O_CLOEXEC));
  auto sum = sha256_fd(fd.get());
  ASSERT_TRUE(sum);
  auto bad = cli({"image", "pull", server.url("fedora-test.qcow2"), "--checksum", "sha256:" + std::string(64, 'f')});
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
  auto vols = sm_->find_volume(cfg_.image_pool, "fedora-test.qcow2");
  ASSERT_TRUE(vols);
  EXPECT_FALSE(*vols);
  auto good = cli({"image", "pull", server.url("fedora-test.qcow2"), "--checksum", "sha256:" + *sum});
  ASSERT_EQ(good.exit_code, 0) << good.err;
  auto v = sm_->find_volume(cfg_.image_pool, "fedora-test.qcow2");
  ASSERT_TRUE(v && *v);
  EXPECT_EQ(read_all((*v)->path()), read_all(src));
}

TEST_F(RealLibvirtd, CustomDirPoolOnDiskAddAndForcedDelete) {
  auto path = (dir_.path / "custom" / "deep").string();
  auto add = cli({"pool", "add", prefix_ + "ssd", "--type", "dir", "--path", path});
  ASSERT_EQ(add.exit_code, 0) << add.err;
  EXPECT_TRUE(fs::is_directory(path));
  ASSERT_TRUE(sm_->create_blank(prefix_ + "ssd", "scratch.qcow2", 1u << 20));
  EXPECT_TRUE(fs::exists(path + "/scratch.qcow2"));
  auto refused = cli({"pool", "delete", prefix_ + "ssd"});
  EXPECT_EQ(refused.exit_code, 5) << refused.err;
  auto forced = cli({"pool", "delete", prefix_ + "ssd", "--force"});
  ASSERT_EQ(forced.exit_code, 0) << forced.err;
  EXPECT_FALSE(fs::exists(path));
  EXPECT_FALSE(*conn_->find_pool(prefix_ + "ssd"));
}

TEST_F(RealLibvirtd, CtrlCDuringAnImportLeavesNoVolume) {
  // 512 MiB of incompressible data with a boot signature: long enough to be
  // mid-upload 300 ms after the start.
  auto path = (dir_.path / "big.raw").string();
  {
    std::ofstream f(path, std::ios::binary);
    std::vector<uint64_t> block(1 << 17);
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < 512; ++i) {
      for (auto& w : block) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        w = x;
      }
      if (i == 0) {
        auto* bytes = reinterpret_cast<unsigned char*>(block.data());
        bytes[510] = 0x55, bytes[511] = 0xAA;
      }
      f.write(reinterpret_cast<const char*>(block.data()), static_cast<std::streamsize>(block.size() * 8));
    }
  }
  ASSERT_TRUE(sm_->ensure_image_pool());  // the pool exists before the clock starts
  // Everything the child needs is built before fork: this process has
  // threads (libvirt's), so the child may only call async-signal-safe code.
  std::vector<std::string> env_s;
  for (char** e = environ; *e; ++e) env_s.emplace_back(*e);
  env_s.push_back("FOUNDRY_IMAGE_POOL=" + cfg_.image_pool);
  env_s.push_back("FOUNDRY_STORAGE_PATH=" + cfg_.base_path);
  std::vector<char*> envp;
  for (auto& e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> arg_s = {kBinary, "--connect", kUri, "image", "import", path};
  std::vector<char*> argv;
  for (auto& a : arg_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  int devnull = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(devnull, 1);
    ::dup2(devnull, 2);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  ::close(devnull);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ::kill(pid, SIGINT);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "foundry died from the signal instead of cleaning up";
  ASSERT_NE(WEXITSTATUS(status), 0) << "the upload finished before SIGINT arrived; make the file larger";
  EXPECT_EQ(WEXITSTATUS(status), 5);
  auto v = sm_->find_volume(cfg_.image_pool, "big.raw");
  ASSERT_TRUE(v);
  EXPECT_FALSE(*v) << "the interrupted upload left its volume";
  EXPECT_FALSE(fs::exists(cfg_.image_pool_path() + "/big.raw"));
}

TEST_F(RealLibvirtd, AnUnusableBasePathFailsWithAHintAndLeavesNoPool) {
  // A regular file where a directory should be: libvirtd cannot build the
  // pool (root could write anywhere else).
  auto blocker = dir_.file("not-a-dir", "x");
  RunOptions o;
  o.timeout = std::chrono::seconds(60);
  o.extra_env = {"FOUNDRY_IMAGE_POOL=" + cfg_.image_pool, "FOUNDRY_VM_POOL=" + cfg_.vm_pool,
                 "FOUNDRY_STORAGE_PATH=" + blocker + "/base"};
  auto r = run({kBinary, "--connect", kUri, "image", "import", make_qcow2("x.qcow2", "1M")}, o);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->exit_code, 5) << r->err;
  EXPECT_NE(r->err.find("create pool " + cfg_.image_pool), std::string::npos) << r->err;
  EXPECT_NE(r->err.find("FOUNDRY_STORAGE_PATH"), std::string::npos) << r->err;
  EXPECT_FALSE(*conn_->find_pool(cfg_.image_pool));
}

}  // namespace
}  // namespace foundry::virt
