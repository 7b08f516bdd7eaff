// Signals, container ids, process identity, the state record and hooks.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "foundry/common/file.h"
#include "foundry/container/hooks.h"
#include "foundry/container/runtime.h"
#include "foundry/container/state.h"

namespace fc = foundry::container;
namespace fs = std::filesystem;

TEST(Signals, NamesAndNumbers) {
  EXPECT_EQ(*fc::parse_signal("KILL"), SIGKILL);
  EXPECT_EQ(*fc::parse_signal("SIGKILL"), SIGKILL);
  EXPECT_EQ(*fc::parse_signal("sigterm"), SIGTERM);
  EXPECT_EQ(*fc::parse_signal("9"), 9);
  EXPECT_EQ(*fc::parse_signal("RTMIN+2"), SIGRTMIN + 2);
  EXPECT_EQ(*fc::parse_signal("SIGRTMAX"), SIGRTMAX);
  auto bad = fc::parse_signal("SIGNOPE");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message(), "unknown signal \"SIGNOPE\"");
  EXPECT_FALSE(fc::parse_signal("0"));
  EXPECT_FALSE(fc::parse_signal("65"));
}

TEST(ContainerId, RuncRules) {
  EXPECT_TRUE(fc::validate_container_id("web-1.prod_a+b"));
  for (const char* bad : {"", ".", "..", "a/b", "a b", "x\n"}) EXPECT_FALSE(fc::validate_container_id(bad)) << bad;
  EXPECT_EQ(fc::validate_container_id("a/b").error().message(), "invalid container id \"a/b\": '/' is not allowed");
}

TEST(ProcessIdentity, StartTimeDistinguishesReuse) {
  auto t = fc::process_start_time(::getpid());
  ASSERT_TRUE(t);
  EXPECT_TRUE(fc::process_alive({::getpid(), *t}));
  EXPECT_FALSE(fc::process_alive({::getpid(), *t + 1}));  // same pid, another process
  EXPECT_FALSE(fc::process_alive({0, 0}));
  // A zombie is not alive.
  pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  auto ct = fc::process_start_time(child);
  siginfo_t info{};
  ::waitid(P_PID, static_cast<id_t>(child), &info, WEXITED | WNOWAIT);  // exited, not reaped
  EXPECT_EQ(fc::process_state(child), 'Z');
  EXPECT_FALSE(fc::process_alive({child, ct.value_or(0)}));
  ::waitpid(child, nullptr, 0);
  EXPECT_FALSE(fc::process_start_time(child));
}

TEST(StateRecord, RoundTripAndOciState) {
  fc::ContainerState s;
  s.id = "c1";
  s.bundle = "/b";
  s.rootfs = "/b/rootfs";
  s.init = {1234, 5678};
  s.recorded = fc::ContainerStatus::Created;
  s.created = fc::now_rfc3339();
  s.annotations = {{"k", "v"}};
  s.hooks.poststop.push_back(fc::Hook{"/bin/true", {"true"}, {"A=1"}, 3});
  auto back = fc::ContainerState::from_json(s.to_json());
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_EQ(back->init.start_time, 5678u);
  EXPECT_EQ(back->recorded, fc::ContainerStatus::Created);
  ASSERT_EQ(back->hooks.poststop.size(), 1u);
  EXPECT_EQ(back->hooks.poststop[0].timeout.value_or(0), 3);
  auto j = s.oci_state(fc::ContainerStatus::Running);
  EXPECT_EQ(j["status"], "running");
  EXPECT_EQ(j["pid"], 1234);
  EXPECT_EQ(j["ociVersion"], fc::kOciVersion);
  EXPECT_EQ(s.oci_state(fc::ContainerStatus::Stopped)["pid"], 0);
  EXPECT_EQ(s.created.size(), std::string("2024-01-02T03:04:05.123456789Z").size());
}

TEST(StateStore, UnknownIdAndStatus) {
  std::string root = (fs::temp_directory_path() / ("foundry-store-" + std::to_string(::getpid()))).string();
  fc::StateStore store(root);
  auto missing = store.load("nope");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().message(), "container \"nope\" does not exist");
  ASSERT_TRUE(store.create_dir("c"));
  auto again = store.create_dir("c");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().message(), "container \"c\" already exists");
  fc::ContainerState s;
  s.id = "c";
  s.bundle = "/b";
  s.init = {::getpid(), *fc::process_start_time(::getpid())};
  s.recorded = fc::ContainerStatus::Created;
  ASSERT_TRUE(store.save(s));
  auto loaded = store.load("c");
  ASSERT_TRUE(loaded);
  EXPECT_EQ(store.status(*loaded), fc::ContainerStatus::Running);  // no exec fifo
  foundry::write_file_atomic(store.fifo_path("c"), "");
  EXPECT_EQ(store.status(*loaded), fc::ContainerStatus::Created);
  loaded->init.start_time += 1;
  EXPECT_EQ(store.status(*loaded), fc::ContainerStatus::Stopped);
  EXPECT_EQ(store.list(), std::vector<std::string>{"c"});
  ASSERT_TRUE(store.remove("c"));
  EXPECT_FALSE(store.exists("c"));
  fs::remove_all(root);
}

TEST(Hooks, StateOnStdinArgsEnvAndFailure) {
  std::string tmpl = (fs::temp_directory_path() / "foundry-hook-XXXXXX").string();
  std::string dir = ::mkdtemp(tmpl.data());
  struct Cleanup {
    std::string d;
    ~Cleanup() { fs::remove_all(d); }
  } cleanup{dir};
  std::string out = dir + "/out";
  fc::Hook h{"/bin/sh", {"hook-name", "-c", "cat > " + out + "; echo \"$0 $FOO\" >> " + out}, {"FOO=bar"}, 5};
  ASSERT_TRUE(fc::run_hooks({h}, "prestart", "{\"id\":\"x\"}"));
  EXPECT_EQ(*foundry::read_file(out), "{\"id\":\"x\"}hook-name bar\n");

  fc::Hook bad{"/bin/sh", {"sh", "-c", "echo broken >&2; exit 3"}, {}, std::nullopt};
  auto st = fc::run_hooks({h, bad}, "createRuntime", "{}");
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().message(), "hooks.createRuntime[1] (/bin/sh) failed with exit code 3: broken");

  fc::Hook slow{"/bin/sh", {"sh", "-c", "sleep 5"}, {}, 1};
  auto t = fc::run_hooks({slow}, "poststart", "{}");
  ASSERT_FALSE(t);
  EXPECT_NE(t.error().message().find("did not finish within 1 s"), std::string::npos);

  auto failures = fc::run_hooks_best_effort({bad, bad}, "poststop", "{}");
  EXPECT_EQ(failures.size(), 2u);
}

TEST(Features, Document) {
  auto f = fc::features_json();
  EXPECT_EQ(f["ociVersionMax"], fc::kOciVersion);
  EXPECT_TRUE(f["linux"]["cgroup"]["v1"].get<bool>());
  EXPECT_EQ(f["linux"]["capabilities"].size(), 41u);
}
