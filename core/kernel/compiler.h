// The compiler a kernel was built with, read from its headers: CONFIG_CC_VERSION_TEXT, else
// CONFIG_GCC_VERSION or CONFIG_CLANG_VERSION, else include/generated/compile.h.
#pragma once

#include <filesystem>
#include <string>

namespace kbuild {

struct KernelCompiler {
    std::string text;     // as the kernel states it, e.g. "gcc-12 (Debian 12.2.0-14) 12.2.0"
    std::string program;  // the command the kernel's Makefiles run: "gcc-12", "gcc", "clang"
    int major = 0;        // the compiler's major version; 0 when unknown
    bool clang = false;   // built by clang (CONFIG_CC_IS_CLANG): built with LLVM=1
    std::string name() const {
        return major > 0 ? (clang ? "clang " : "gcc ") + std::to_string(major) : clang ? "clang" : "gcc";
    }
};

// Throws kbuild::Error naming the directory when none of the three sources says anything.
KernelCompiler read_kernel_compiler(const std::filesystem::path& kernel_dir);

// The compiler a kernel's config names (a source kernel's, before any tree is made from it).
// A config that names none (a defconfig, a kernel before 4.18) gives gcc of major 0, for which
// the builder images' oldest gcc is chosen. Throws kbuild::Error naming a file it cannot read.
KernelCompiler config_compiler(const std::filesystem::path& config);

// Whether `program` is an executable file in one of $PATH's directories.
bool on_path(const std::string& program);

}  // namespace kbuild
