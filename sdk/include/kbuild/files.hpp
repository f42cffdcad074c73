// Small files read whole: a kernel config, a bundle's one-value files, a module to compress.
#pragma once

#include <string>

namespace kbuild {

// The file's bytes. Throws kbuild::Error naming the file when it cannot be read.
std::string read_file(const std::string& path);

}  // namespace kbuild
