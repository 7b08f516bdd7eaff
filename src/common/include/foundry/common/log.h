// Logging. Libraries log at debug level only; the CLI edge reports an error
// once. --verbose raises the level so library detail becomes visible.
#pragma once

#include <spdlog/spdlog.h>

namespace foundry::log {

// Sets up the stderr logger. verbosity: 0 = warnings, 1 = debug, 2 = trace.
void init(int verbosity);

}  // namespace foundry::log
