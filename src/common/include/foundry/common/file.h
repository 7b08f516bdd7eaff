// File helpers: whole-file reads and crash-safe atomic writes.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

#include "foundry/common/error.h"

namespace foundry {

// Reads a whole file. Errors are ErrorKind::Config with the path and errno.
Result<std::string> read_file(const std::string& path);

// Writes data to path atomically: a temporary file in the same directory,
// fsync, rename over path, fsync of the directory. Readers see the old or the
// new content, never a mix; a crash leaves at most a stray ".tmp" file.
Status write_file_atomic(const std::string& path, std::string_view data, mode_t mode = 0644);

// mkdir -p with the given mode for the directories it creates.
Status make_dirs(const std::string& path, mode_t mode = 0755);

}  // namespace foundry
