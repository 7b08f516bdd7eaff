#include "foundry/common/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

namespace foundry::log {

void init(int verbosity) {
  auto logger = spdlog::stderr_color_mt("foundry");
  logger->set_pattern("%^%l%$: %v");
  spdlog::set_default_logger(logger);
  spdlog::set_level(verbosity >= 2   ? spdlog::level::trace
                    : verbosity == 1 ? spdlog::level::debug
                                     : spdlog::level::warn);
}

}  // namespace foundry::log
