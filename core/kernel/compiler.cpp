#include "kernel/compiler.h"

#include "kernel/kernel_config.h"

#include <kbuild/error.hpp>

#include <unistd.h>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <regex>
#include <sstream>

namespace fs = std::filesystem;

namespace kbuild {
namespace {

// "gcc-12 (Debian 12.2.0-14) 12.2.0" -> 12; "gcc version 10.2.1 20210110 (Debian ...)" -> 10:
// the last word that is a bare dotted version.
int gcc_major_of(const std::string& text) {
    static const std::regex version(R"(^(\d+)\.\d+(\.\d+)?$)");
    std::istringstream words(text);
    int major = 0;
    std::smatch match;
    for (std::string word; words >> word;)
        if (std::regex_match(word, match, version)) major = std::stoi(match[1]);
    return major;
}

// What a config says of its compiler; nullopt when it says nothing.
std::optional<KernelCompiler> compiler_in(const fs::path& config) {
    KernelCompiler compiler;
    compiler.text = config_value(config, "CONFIG_CC_VERSION_TEXT");
    compiler.clang =
        config_value(config, "CONFIG_CC_IS_CLANG") == "y" || compiler.text.find("clang version") != std::string::npos;
    const std::string version = config_value(config, compiler.clang ? "CONFIG_CLANG_VERSION" : "CONFIG_GCC_VERSION");
    if (compiler.text.empty() && (version.empty() || version == "0")) return std::nullopt;
    compiler.major = !version.empty() && version != "0" ? std::stoi(version) / 10000 : gcc_major_of(compiler.text);
    if (compiler.clang) {
        compiler.program = "clang";
    } else if (!compiler.text.empty()) {
        compiler.program = compiler.text.substr(0, compiler.text.find(' '));
    } else {
        compiler.program = "gcc";
    }
    if (compiler.text.empty())
        compiler.text =
            compiler.name() + " (CONFIG_" + (compiler.clang ? "CLANG" : "GCC") + "_VERSION=" + version + ")";
    return compiler;
}

}  // namespace

KernelCompiler config_compiler(const fs::path& config) {
    if (auto compiler = compiler_in(config)) return *compiler;
    if (!fs::is_regular_file(config)) throw Error(config.string() + ": cannot read the kernel's config");
    KernelCompiler unnamed;
    unnamed.program = "gcc";
    unnamed.text = "the config names no compiler";
    return unnamed;
}

KernelCompiler read_kernel_compiler(const fs::path& kernel_dir) {
    KernelCompiler compiler;
    if (fs::exists(kernel_dir / ".config"))
        if (auto named = compiler_in(kernel_dir / ".config")) return *named;
    std::ifstream compile_h(kernel_dir / "include/generated/compile.h");
    for (std::string line; std::getline(compile_h, line);) {
        const std::string key = "#define LINUX_COMPILER \"";
        if (line.compare(0, key.size(), key) != 0) continue;
        compiler.text = line.substr(key.size(), line.rfind('"') - key.size());
        compiler.major = gcc_major_of(compiler.text);
        compiler.program = "gcc";
        return compiler;
    }
    throw Error(kernel_dir.string() +
                ": cannot tell the kernel's compiler (no CONFIG_CC_VERSION_TEXT, "
                "CONFIG_GCC_VERSION or CONFIG_CLANG_VERSION in .config, no include/generated/compile.h)");
}

bool on_path(const std::string& program) {
    if (program.find('/') != std::string::npos) return ::access(program.c_str(), X_OK) == 0;
    const char* path = std::getenv("PATH");
    std::istringstream dirs(path ? path : "/usr/bin:/bin");
    for (std::string dir; std::getline(dirs, dir, ':');)
        if (!dir.empty() && ::access((fs::path(dir) / program).c_str(), X_OK) == 0) return true;
    return false;
}

}  // namespace kbuild
