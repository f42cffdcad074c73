// kbuild's log: spdlog to stderr, one line per event, "level: text". Data goes to stdout.
#pragma once

namespace kbuild {

enum class Verbosity { quiet, normal, verbose };

// Installs the stderr logger; safe to call again (tests, verbs that change verbosity).
void setup_logging(Verbosity verbosity);

}  // namespace kbuild
