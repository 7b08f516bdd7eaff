#include "foundry/common/error.h"

#include <cerrno>

#include <gtest/gtest.h>

#include "foundry/common/scope_exit.h"

using namespace foundry;

TEST(Error, ExitCodesFollowSeed001) {
  EXPECT_EQ(exit_code(ErrorKind::Config), 1);
  EXPECT_EQ(exit_code(ErrorKind::Validation), 2);
  EXPECT_EQ(exit_code(ErrorKind::Connection), 3);
  EXPECT_EQ(exit_code(ErrorKind::Operation), 4);
  EXPECT_EQ(exit_code(ErrorKind::Storage), 5);
}

TEST(Error, ContextChainOutermostFirstWithErrno) {
  Error e = Error(ErrorKind::Storage, "write failed").with_errno(ENOSPC);
  e.wrap("create volume web_boot").wrap("in pool foundry-vms");
  EXPECT_EQ(e.to_string(), "in pool foundry-vms: create volume web_boot: write failed: No space left on device");
  EXPECT_EQ(e.exit_code(), 5);
}

static Result<int> half(int v) {
  if (v % 2) return fail(ErrorKind::Validation, "{} is odd", v);
  return v / 2;
}

static Result<int> quarter(int v) {
  int h = FOUNDRY_TRY_CTX(half(v), "quarter of {}", v);
  return FOUNDRY_TRY(half(h));
}

TEST(Error, TryPropagatesAndWraps) {
  EXPECT_EQ(quarter(8).value(), 2);
  auto r = quarter(7);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().to_string(), "quarter of 7: 7 is odd");
  auto r2 = quarter(6);
  ASSERT_FALSE(r2);
  EXPECT_EQ(r2.error().to_string(), "3 is odd");
}

TEST(Diagnostic, FormatsFileLineColumnFieldHint) {
  Diagnostic d{"vm.yaml", 12, 7, "network_interfaces[1].ip", "not an IPv4 address with prefix", "write 10.0.0.5/24"};
  EXPECT_EQ(d.to_string(),
            "vm.yaml:12:7: network_interfaces[1].ip: not an IPv4 address with prefix (hint: write 10.0.0.5/24)");
}

TEST(UndoList, RollsBackNewestFirstUnlessCommitted) {
  std::vector<int> order;
  {
    UndoList u;
    u.push("a", [&] { order.push_back(1); });
    u.push("b", [&] { order.push_back(2); });
  }
  EXPECT_EQ(order, (std::vector<int>{2, 1}));
  order.clear();
  {
    UndoList u;
    u.push("a", [&] { order.push_back(1); });
    u.commit();
  }
  EXPECT_TRUE(order.empty());
}
