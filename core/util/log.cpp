#include "util/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace kbuild {

void setup_logging(Verbosity verbosity) {
    auto logger = spdlog::get("kbuild");
    if (!logger) {
        logger = spdlog::stderr_color_mt("kbuild");
        logger->set_pattern("%^%l%$: %v");
        spdlog::set_default_logger(logger);
    }
    switch (verbosity) {
        case Verbosity::quiet: logger->set_level(spdlog::level::warn); break;
        case Verbosity::normal: logger->set_level(spdlog::level::info); break;
        case Verbosity::verbose: logger->set_level(spdlog::level::debug); break;
    }
    logger->flush_on(spdlog::level::trace);
}

}  // namespace kbuild
