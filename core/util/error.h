// How the host fails: by throwing. kbuild::Error (the SDK's error.hpp) carries one line naming
// the thing and the cause; UsageError marks a mistake of the command line or the config file
// rather than a failure of the work, so the verb exits 2 instead of 1.
#pragma once

#include <kbuild/error.hpp>

namespace kbuild {

struct UsageError : Error {
    using Error::Error;
};

}  // namespace kbuild
