// Which architecture a kernel tree is for, and which this host is: the kernel's own names
// (ARCH=, its arch/ directory: x86, arm64), the machine `uname -m` names (x86_64, aarch64), and
// the ELF machine of what a tree's programs and a built module are.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace kbuild {

// The arch/ directory a kernel's .config builds from ("x86", "arm64"); "" when it cannot tell.
std::string kernel_arch(const std::filesystem::path& config);

// This host's kernel architecture ("x86" on x86_64).
const std::string& host_kernel_arch();

// A kernel's ARCH when it is not this host's, else "": what a build cross-compiles for.
std::string cross_arch(const std::string& arch);

// The machine `uname -m` reports on a kernel of `arch` ("arm64" -> "aarch64", "x86" -> "x86_64");
// an unknown name passes unchanged.
std::string kernel_machine(const std::string& arch);

// The prefix of Debian's cross tools for a kernel architecture ("arm64" ->
// "aarch64-linux-gnu-", as gcc-12-aarch64-linux-gnu installs aarch64-linux-gnu-gcc-12); "" for
// one it does not know.
std::string cross_tools_prefix(const std::string& arch);

// dpkg's name of a kernel architecture ("x86" -> "amd64", "arm64" -> "arm64"); "" for one it
// does not know.
std::string debian_arch(const std::string& arch);

// A machine as a distro names it (amd64, arm64, x86_64, aarch64) as the kernel does ("x86",
// "arm64"); "" for a name it does not know.
std::string arch_of_machine(const std::string& name);

// The ELF e_machine of a file; throws Error naming it when it is not an ELF file.
std::uint16_t elf_machine(const std::filesystem::path& file);

// The kernel architecture whose programs and modules are of ELF machine `machine` ("x86" for
// EM_X86_64 and EM_386); "machine N" for one it does not know.
std::string arch_of_elf_machine(std::uint16_t machine);

}  // namespace kbuild

#include <kbuild/types.hpp>

namespace kbuild {

// `path` (inside `root`) with its symlinks resolved as they would be were `root` the system's
// root: an absolute link target is taken under `root`, and ".." never leaves it. The result
// need not exist.
std::filesystem::path resolve_in_root(const std::filesystem::path& root, const std::filesystem::path& path);

// A program a module build runs from its kernel tree (scripts/basic/fixdep,
// scripts/mod/modpost) that is built for another architecture than this host's (a header
// package of the target's architecture holds the target's).
struct ForeignProgram {
    std::string program;            // "scripts/basic/fixdep"
    std::string arch;               // what it is built for: "arm64"
    std::filesystem::path scripts;  // the tree's scripts directory, links resolved in the root
    // Why it cannot run, in one line naming the tree, the program and its architecture.
    std::string why(const std::filesystem::path& kernel_dir) const;
};

// The first such program of the tree; nullopt when they are this host's or there are none (make
// then says what is missing).
std::optional<ForeignProgram> foreign_host_program(const std::filesystem::path& root,
                                                   const std::filesystem::path& kernel_dir);

// Throws Error with ForeignProgram::why when the tree has one.
void check_host_programs(const std::filesystem::path& root, const std::filesystem::path& kernel_dir);

// A target's id among every architecture's: release_id(release) for x86 (as it always was),
// "<machine>/<release_id>" for another ("aarch64/5.15.0-100-generic": Ubuntu names its arm64
// kernels as its amd64 ones). Shards, bundles and target locks are keyed by it.
std::string arch_release_id(const Release& release);

}  // namespace kbuild
