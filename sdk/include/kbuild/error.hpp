// How kbuild fails, on both sides of the plugin ABI: by throwing one of these, whose what() is one
// line naming the thing and the cause ("<url>: sha256 mismatch", "6.1.0-9-amd64: no headers").
// No JSON here: a file that only throws includes this, not types.hpp.
#pragma once

#include <stdexcept>

namespace kbuild {

// What a hook or service throws to fail with a message; the C layer turns it into KB_ERROR.
struct Error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Thrown by a hook that cannot do what was asked of this distro; becomes KB_NOT_SUPPORTED.
struct NotSupported : Error {
    using Error::Error;
};

}  // namespace kbuild
