// The .deb cache kept between builds (private to the platform library).
#pragma once

#include <string>
#include <vector>

#include "foundry/platform/rootfs.h"

namespace foundry::platform::detail {

// Drops the .debs of other versions of the packages just installed, so the
// cache does not grow by one version of everything at every point release.
// Packages this build did not install are kept: one cache can serve several
// images with different package sets.
void prune_apt_cache(const std::string& dir, const std::vector<InstalledPackage>& installed);

}  // namespace foundry::platform::detail
