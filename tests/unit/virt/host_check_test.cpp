#include "foundry/virt/host_check.h"

#include <gtest/gtest.h>

namespace foundry::virt {
namespace {

KvmNode node(mode_t mode, gid_t gid = 0) { return {true, mode, 0, gid}; }

TEST(KvmAccessWarning, RootOnlyNodeOnALocalLibvirtdWarnsWithTheFix) {
  for (auto uri : {"qemu:///system", "qemu:///session", "qemu+unix:///system"}) {
    auto w = kvm_access_warning(uri, node(0600));
    ASSERT_TRUE(w) << uri;
    EXPECT_NE(w->find("/dev/kvm is 0600 root:root"), std::string::npos) << *w;
    EXPECT_NE(w->find("chgrp kvm /dev/kvm && chmod 0660 /dev/kvm"), std::string::npos) << *w;
  }
}

TEST(KvmAccessWarning, SilentWhenTheQemuUserCanOpenIt) {
  EXPECT_FALSE(kvm_access_warning("qemu:///system", node(0660, 109)));  // udev: root:kvm 0660
  EXPECT_FALSE(kvm_access_warning("qemu:///system", node(0666, 109)));  // systemd's default mode
}

TEST(KvmAccessWarning, SilentWithoutKvmOrForOtherHosts) {
  EXPECT_FALSE(kvm_access_warning("qemu:///system", KvmNode{}));
  EXPECT_FALSE(kvm_access_warning("qemu+ssh://build1/system", node(0600)));  // not this machine's node
  EXPECT_FALSE(kvm_access_warning("qemu+tcp://10.0.0.1/system", node(0600)));
  EXPECT_FALSE(kvm_access_warning("test:///default", node(0600)));
  EXPECT_FALSE(kvm_access_warning("not a uri", node(0600)));
}

TEST(KvmAccessWarning, StatReadsACharacterDeviceOnly) {
  auto null = stat_kvm("/dev/null");
  EXPECT_TRUE(null.exists);
  EXPECT_EQ(null.mode, 0666u);
  EXPECT_FALSE(stat_kvm(FOUNDRY_SOURCE_DIR "/CMakeLists.txt").exists);  // a regular file is no device node
  EXPECT_FALSE(stat_kvm("/nonexistent/kvm").exists);
}

}  // namespace
}  // namespace foundry::virt
