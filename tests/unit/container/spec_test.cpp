// config.json parsing: the valid corpus parses into the right values; every
// file of the invalid corpus fails with a diagnostic at the expected JSON
// path (tests/data/oci/invalid/EXPECTED.tsv).
#include <sys/mount.h>
#include <sys/resource.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "foundry/common/file.h"
#include "foundry/container/spec.h"

namespace fc = foundry::container;
using foundry::ErrorKind;

namespace {

const std::string kData = std::string(FOUNDRY_SOURCE_DIR) + "/tests/data/oci";

fc::Spec parse_ok(const std::string& file) {
  auto text = foundry::read_file(kData + "/" + file);
  EXPECT_TRUE(text.has_value());
  auto s = fc::parse_spec(*text, file);
  EXPECT_TRUE(s.has_value()) << (s ? "" : s.error().to_string());
  return s ? *s : fc::Spec{};
}

struct BadCase {
  std::string file, kind, path, words;
};

std::vector<BadCase> bad_cases() {
  std::vector<BadCase> out;
  std::ifstream in(kData + "/invalid/EXPECTED.tsv");
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::stringstream ss(line);
    BadCase c;
    std::getline(ss, c.file, '\t');
    std::getline(ss, c.kind, '\t');
    std::getline(ss, c.path, '\t');
    std::getline(ss, c.words, '\t');
    out.push_back(c);
  }
  return out;
}

}  // namespace

TEST(SpecParse, MinimalValues) {
  auto s = parse_ok("valid/minimal.json");
  EXPECT_EQ(s.oci_version, "1.2.0");
  ASSERT_TRUE(s.process);
  EXPECT_EQ(s.process->args, (std::vector<std::string>{"sh", "-c", "echo hello"}));
  EXPECT_EQ(s.process->cwd, "/");
  EXPECT_FALSE(s.process->capabilities);  // absent: not "empty"
  ASSERT_TRUE(s.root);
  EXPECT_EQ(s.root->path, "rootfs");
  EXPECT_TRUE(s.root->readonly);
  EXPECT_EQ(s.hostname, "test");
  ASSERT_EQ(s.mounts.size(), 2u);
  EXPECT_EQ(s.mounts[1].flags.set, static_cast<unsigned long>(MS_NOSUID));
  EXPECT_EQ(s.mounts[1].flags.data, "mode=755");
  EXPECT_TRUE(s.linux_spec.new_namespace(fc::NamespaceType::Pid));
  EXPECT_FALSE(s.linux_spec.new_namespace(fc::NamespaceType::User));
}

TEST(SpecParse, FullValues) {
  auto s = parse_ok("valid/full.json");
  const auto& p = *s.process;
  EXPECT_EQ(p.user.uid, 1000u);
  EXPECT_EQ(p.user.additional_gids, (std::vector<uint32_t>{5, 6}));
  ASSERT_TRUE(p.user.umask);
  EXPECT_EQ(*p.user.umask, 18u);
  ASSERT_TRUE(p.capabilities);
  EXPECT_EQ(p.capabilities->bounding, (std::vector<int>{5, 10, 0}));  // KILL, NET_BIND_SERVICE, CHOWN
  ASSERT_EQ(p.rlimits.size(), 2u);
  EXPECT_EQ(p.rlimits[0].resource, RLIMIT_NOFILE);
  EXPECT_EQ(p.rlimits[0].hard, 4096u);
  EXPECT_TRUE(p.no_new_privileges);
  ASSERT_TRUE(p.oom_score_adj);
  EXPECT_EQ(*p.oom_score_adj, 100);
  ASSERT_TRUE(p.console_size);
  EXPECT_EQ(p.console_size->width, 80u);

  const auto& bind = s.mounts[2];
  EXPECT_TRUE(bind.flags.bind);
  EXPECT_TRUE(bind.flags.recursive_bind);
  EXPECT_EQ(bind.flags.set, static_cast<unsigned long>(MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC));
  EXPECT_EQ(bind.flags.propagation, static_cast<unsigned long>(MS_PRIVATE | MS_REC));
  EXPECT_EQ(bind.flags.data, "");

  const auto& l = s.linux_spec;
  EXPECT_EQ(l.find_namespace(fc::NamespaceType::Ipc)->path, "/proc/1/ns/ipc");
  EXPECT_FALSE(l.new_namespace(fc::NamespaceType::Ipc));
  EXPECT_TRUE(l.new_namespace(fc::NamespaceType::Network));
  EXPECT_TRUE(l.new_namespace(fc::NamespaceType::User));
  ASSERT_EQ(l.uid_mappings.size(), 1u);
  EXPECT_EQ(l.uid_mappings[0].host_id, 100000u);
  ASSERT_EQ(l.devices.size(), 1u);
  EXPECT_EQ(l.devices[0].major, 10);
  EXPECT_EQ(*l.devices[0].file_mode, 0666u);
  EXPECT_EQ(l.cgroups_path, "/foundry/full");
  ASSERT_TRUE(l.resources);
  const auto& r = *l.resources;
  EXPECT_EQ(*r.memory->limit, 67108864);
  EXPECT_EQ(*r.memory->swap, 134217728);
  EXPECT_EQ(*r.cpu->quota, 50000);
  EXPECT_EQ(r.cpu->cpus, "0-1");
  EXPECT_EQ(*r.pids_limit, 64);
  EXPECT_EQ(*r.block_io->weight, 500);
  ASSERT_EQ(r.block_io->throttle_read_bps.size(), 1u);
  EXPECT_EQ(r.block_io->throttle_read_bps[0].rate, 1048576u);
  ASSERT_EQ(r.devices.size(), 2u);
  EXPECT_FALSE(r.devices[0].allow);
  EXPECT_EQ(r.devices[0].type, 'a');
  EXPECT_EQ(r.devices[1].access, "rw");
  ASSERT_TRUE(l.seccomp);
  EXPECT_EQ(l.seccomp->default_action, fc::SeccompAction::Allow);
  ASSERT_EQ(l.seccomp->syscalls.size(), 2u);
  EXPECT_EQ(*l.seccomp->syscalls[0].errno_ret, 1u);
  EXPECT_EQ(l.seccomp->syscalls[1].args[0].op, fc::SeccompOp::NotEqual);
  EXPECT_EQ(l.sysctl.at("net.ipv4.ip_forward"), "1");
  EXPECT_EQ(s.hooks.create_runtime.at(0).timeout.value_or(0), 5);
  EXPECT_EQ(s.hooks.create_runtime.at(0).args.at(0), "sh");
  EXPECT_EQ(s.annotations.at("org.example.key"), "value");
}

TEST(SpecParse, DefaultSpecParses) {
  auto s = fc::parse_spec(fc::default_spec_json(false), "default");
  ASSERT_TRUE(s) << s.error().to_string();
  EXPECT_TRUE(s->linux_spec.new_namespace(fc::NamespaceType::Cgroup));
  auto rootless = fc::parse_spec(fc::default_spec_json(true), "default-rootless");
  ASSERT_TRUE(rootless) << rootless.error().to_string();
  EXPECT_TRUE(rootless->linux_spec.new_namespace(fc::NamespaceType::User));
}

TEST(SpecParse, UnknownPropertiesAreIgnored) {
  auto text = foundry::read_file(kData + "/valid/minimal.json");
  ASSERT_TRUE(text);
  std::string t = *text;
  t.insert(t.find('{') + 1, "\"org.future.field\": {\"x\": [1,2]},");
  EXPECT_TRUE(fc::parse_spec(t));
}

TEST(SpecParse, InvalidCorpusIsLargeEnough) { EXPECT_GE(bad_cases().size(), 20u); }

TEST(SpecParse, InvalidCorpusNamesThePath) {
  for (const auto& c : bad_cases()) {
    SCOPED_TRACE(c.file);
    auto text = foundry::read_file(kData + "/invalid/" + c.file);
    ASSERT_TRUE(text) << "missing corpus file";
    auto s = fc::parse_spec(*text, c.file);
    ASSERT_FALSE(s) << "parsed although it is invalid";
    const auto& e = s.error();
    EXPECT_EQ(e.kind(), c.kind == "config" ? ErrorKind::Config : ErrorKind::Validation);
    ASSERT_FALSE(e.diagnostics().empty());
    bool found = false;
    for (const auto& d : e.diagnostics()) {
      EXPECT_EQ(d.file, c.file);
      if (d.field == c.path && d.message.find(c.words) != std::string::npos) found = true;
    }
    EXPECT_TRUE(found) << "expected " << c.path << ": ..." << c.words << "..., got: " << e.diagnostics()[0].to_string();
    // The summary names the first problem's field (syntax errors: its position).
    if (e.kind() == ErrorKind::Validation)
      EXPECT_NE(e.message().find(e.diagnostics()[0].field), std::string::npos) << e.message();
    else
      EXPECT_NE(e.message().find("line 1, column"), std::string::npos) << e.message();
  }
}

TEST(SpecParse, SyntaxErrorHasLineAndColumn) {
  auto s = fc::parse_spec("{\n  \"ociVersion\": \"1.2.0\",\n  \"process\": [,]\n}\n", "cfg.json");
  ASSERT_FALSE(s);
  ASSERT_EQ(s.error().diagnostics().size(), 1u);
  EXPECT_EQ(s.error().diagnostics()[0].line, 3);
  EXPECT_EQ(s.error().diagnostics()[0].column, 15);
  EXPECT_EQ(s.error().kind(), ErrorKind::Config);
}

TEST(SpecParse, EveryProblemIsReported) {
  auto s = fc::parse_spec(R"({"ociVersion": "1.2.0", "process": {"user": {"uid": 0, "gid": 0}, "args": [], "cwd": "x"},
                             "root": {"path": ""}, "linux": {"namespaces": [{"type": "mount"}]}})");
  ASSERT_FALSE(s);
  std::vector<std::string> fields;
  for (const auto& d : s.error().diagnostics()) fields.push_back(d.field);
  EXPECT_EQ(fields, (std::vector<std::string>{"process.args", "process.cwd", "root.path"}));
  EXPECT_NE(s.error().message().find("has 3 problems"), std::string::npos);
  EXPECT_FALSE(s.error().hint().empty());
}

TEST(SpecParse, LoadSpecWithoutConfig) {
  auto dir = std::filesystem::temp_directory_path() / "foundry-spec-test-empty";
  std::filesystem::create_directories(dir);
  auto s = fc::load_spec(dir.string());
  std::filesystem::remove_all(dir);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().kind(), ErrorKind::Config);
  EXPECT_EQ(s.error().message(), "bundle " + dir.string() + " has no config.json");
  EXPECT_NE(s.error().hint().find("foundry-oci spec"), std::string::npos);
}

TEST(MountOptions, FlagsPropagationAndData) {
  auto f = fc::parse_mount_options({"ro", "nosuid", "nodev", "noexec", "rslave", "mode=700", "size=1m"});
  EXPECT_EQ(f.set, static_cast<unsigned long>(MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC));
  EXPECT_EQ(f.propagation, static_cast<unsigned long>(MS_SLAVE | MS_REC));
  EXPECT_EQ(f.data, "mode=700,size=1m");
  EXPECT_FALSE(f.bind);
  auto g = fc::parse_mount_options({"ro", "rw", "bind"});  // later options win
  EXPECT_EQ(g.set, 0ul);
  EXPECT_EQ(g.clear, static_cast<unsigned long>(MS_RDONLY));
  EXPECT_TRUE(g.bind);
  EXPECT_FALSE(g.recursive_bind);
  EXPECT_TRUE(fc::parse_mount_options({"rbind"}).recursive_bind);
}

TEST(Names, CapabilitiesAndRlimits) {
  EXPECT_EQ(fc::capability_from_name("CAP_SYS_ADMIN"), 21);
  EXPECT_EQ(fc::capability_from_name("cap_net_raw"), 13);
  EXPECT_FALSE(fc::capability_from_name("CAP_NOPE"));
  EXPECT_EQ(fc::capability_name(40), "CAP_CHECKPOINT_RESTORE");
  EXPECT_EQ(fc::rlimit_from_name("RLIMIT_NOFILE"), RLIMIT_NOFILE);
  EXPECT_FALSE(fc::rlimit_from_name("NOFILE"));
}
