// Verification of built modules: read the .modinfo section of a .ko (ELF) and check that its
// vermagic names the target kernel release, and its ELF machine the kernel's architecture.
#pragma once

#include <filesystem>
#include <map>
#include <string>

namespace kbuild {

// key -> value of a module's .modinfo ("vermagic", "name", "version", "license", ...). A key
// that repeats (alias, depends) keeps its first value. Throws kbuild::Error naming the file
// when it is not an ELF object or has no .modinfo section.
std::map<std::string, std::string> read_modinfo(const std::filesystem::path& ko);

// Passes when the module's vermagic begins with `release` followed by a space (or ends there);
// otherwise throws kbuild::Error saying why, e.g.
//   "vermagic '6.1.0-49-amd64 SMP ...' does not match kernel 6.1.0-50-amd64".
// For an arm64 kernel (`arch`, its ARCH) the vermagic must also carry arm64's mark, "aarch64".
void check_vermagic(const std::map<std::string, std::string>& modinfo, const std::string& release,
                    const std::string& arch = "");

// Passes when the module's ELF machine is of the kernel's architecture (`arch`: "x86",
// "arm64"); otherwise throws kbuild::Error, e.g. "an x86 ELF file (machine 62), not arm64".
// Passes for any machine when `arch` is "".
void check_module_machine(const std::filesystem::path& ko, const std::string& arch);

}  // namespace kbuild
