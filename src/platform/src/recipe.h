// The image recipe: every file Foundry writes into a root tree, and the two
// hook scripts mmdebstrap runs. Kept apart from the code that runs them so
// that describe_inputs can hash exactly what a build would write.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "foundry/platform/rootfs.h"

namespace foundry::platform::detail {

struct RecipeFile {
  std::string path;  // relative to the root
  std::string content;
  mode_t mode = 0644;
};

// Files placed in the tree before any package is installed (mmdebstrap setup
// hook), so the packages' maintainer scripts already see them.
std::vector<RecipeFile> overlay_files(const RootfsOptions& opts);

// Files written after mmdebstrap finished (they replace what packages or
// mmdebstrap itself left there: the build machine's hostname, host keys...).
std::vector<RecipeFile> final_files(const RootfsOptions& opts);

// Executables run by mmdebstrap with the root directory as $1.
std::string setup_hook_script();
std::string customize_hook_script();

// Paths removed from the finished tree (SSH host keys, D-Bus machine id).
std::vector<std::string> removed_paths();

}  // namespace foundry::platform::detail
