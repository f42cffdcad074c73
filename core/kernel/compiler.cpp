#include "kernel/compiler.h"

#include <kbuild/error.hpp>

#include <unistd.h>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>

namespace fs = std::filesystem;

namespace kbuild {
namespace {

// The value of `KEY=...` in a .config (quotes removed), or "".
std::string config_value(const fs::path& config, const std::string& key) {
    std::ifstream in(config);
    const std::string prefix = key + "=";
    for (std::string line; std::getline(in, line);) {
        if (line.compare(0, prefix.size(), prefix) != 0) continue;
        std::string value = line.substr(prefix.size());
        if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
        return value;
    }
    return {};
}

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

}  // namespace

KernelCompiler read_kernel_compiler(const fs::path& kernel_dir) {
    KernelCompiler compiler;
    const fs::path config = kernel_dir / ".config";
    compiler.text = config_value(config, "CONFIG_CC_VERSION_TEXT");
    if (!compiler.text.empty()) {
        compiler.program = compiler.text.substr(0, compiler.text.find(' '));
        compiler.major = gcc_major_of(compiler.text);
        return compiler;
    }
    if (const std::string gcc = config_value(config, "CONFIG_GCC_VERSION"); !gcc.empty()) {
        compiler.major = std::stoi(gcc) / 10000;
        compiler.text = "gcc " + std::to_string(compiler.major) + " (CONFIG_GCC_VERSION=" + gcc + ")";
        compiler.program = "gcc";
        return compiler;
    }
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
                ": cannot tell the kernel's compiler (no CONFIG_CC_VERSION_TEXT or "
                "CONFIG_GCC_VERSION in .config, no include/generated/compile.h)");
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
