#include "foundry/common/subprocess.h"

#include <signal.h>

#include <chrono>

#include <gtest/gtest.h>

using namespace foundry;
using namespace std::chrono_literals;

TEST(Subprocess, CapturesOutputAndExitCode) {
  auto r = run({"sh", "-c", "echo out; echo err >&2; exit 3"});
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_EQ(r->out, "out\n");
  EXPECT_EQ(r->err, "err\n");
  EXPECT_FALSE(r->ok());
  EXPECT_EQ(r->describe(), "exit 3: err");
}

TEST(Subprocess, ArgvIsNotInterpretedByAShell) {
  auto r = run({"printf", "%s|", "a b", "$HOME", ";ls"});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->out, "a b|$HOME|;ls|");
}

TEST(Subprocess, FeedsStdinLargerThanAPipe) {
  RunOptions o;
  o.stdin_data = std::string(1 << 20, 'x');
  auto r = run({"wc", "-c"}, o);
  ASSERT_TRUE(r);
  EXPECT_EQ(std::stoul(r->out), 1u << 20);
}

TEST(Subprocess, TimeoutKillsTheWholeGroupAndReaps) {
  RunOptions o;
  o.timeout = 200ms;
  auto t0 = std::chrono::steady_clock::now();
  // The grandchild keeps stdout open; only a group kill ends it.
  auto r = run({"sh", "-c", "sleep 30 & sleep 30"}, o);
  auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->timed_out);
  EXPECT_FALSE(r->ok());
  EXPECT_LT(took, 5s);
}

TEST(Subprocess, MissingProgramIsAnError) {
  auto r = run({"foundry-no-such-program-xyz"});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().to_string().find("program not found"), std::string::npos);
}

TEST(Subprocess, ExtraEnvAndCwd) {
  RunOptions o;
  o.extra_env = {"FOUNDRY_T=42"};
  o.cwd = "/";
  auto r = run({"sh", "-c", "echo $FOUNDRY_T; pwd"}, o);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->out, "42\n/\n");
}

TEST(Subprocess, RunCheckedTurnsFailureIntoError) {
  auto r = run_checked({"sh", "-c", "echo boom >&2; exit 1"});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().to_string(), "sh failed: exit 1: boom");
}
