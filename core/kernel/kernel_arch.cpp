#include "kernel/kernel_arch.h"

#include <kbuild/error.hpp>

#include <elf.h>
#include <sys/utsname.h>

#include <array>
#include <cstring>
#include <fstream>
#include <utility>
#include <vector>

namespace fs = std::filesystem;

namespace kbuild {
namespace {

struct Arch {
    const char* kernel;   // ARCH=, arch/<kernel>
    const char* symbol;   // the .config line that selects it
    const char* machine;  // uname -m
    const char* debian;   // dpkg's name
    const char* triple;   // Debian's GNU triple, its cross tools' prefix
    std::uint16_t elf;
    std::uint16_t elf32;  // its 32-bit machine, when the architecture has one of another number
};

constexpr std::array<Arch, 11> kArches = {{
    {"x86", "CONFIG_X86=y", "x86_64", "amd64", "x86_64-linux-gnu", EM_X86_64, EM_386},
    {"arm64", "CONFIG_ARM64=y", "aarch64", "arm64", "aarch64-linux-gnu", EM_AARCH64, 0},
    {"arm", "CONFIG_ARM=y", "armv7l", "armhf", "arm-linux-gnueabihf", EM_ARM, 0},
    {"powerpc", "CONFIG_PPC=y", "ppc64le", "ppc64el", "powerpc64le-linux-gnu", EM_PPC64, EM_PPC},
    {"s390", "CONFIG_S390=y", "s390x", "s390x", "s390x-linux-gnu", EM_S390, 0},
    {"riscv", "CONFIG_RISCV=y", "riscv64", "riscv64", "riscv64-linux-gnu", EM_RISCV, 0},
    {"mips", "CONFIG_MIPS=y", "mips64", "mips64el", "mips64el-linux-gnuabi64", EM_MIPS, 0},
    {"sparc", "CONFIG_SPARC=y", "sparc64", "sparc64", "sparc64-linux-gnu", EM_SPARCV9, EM_SPARC},
    {"loongarch", "CONFIG_LOONGARCH=y", "loongarch64", "loong64", "loongarch64-linux-gnu", 258 /* EM_LOONGARCH */, 0},
    {"parisc", "CONFIG_PARISC=y", "parisc64", "hppa", "hppa-linux-gnu", EM_PARISC, 0},
    {"alpha", "CONFIG_ALPHA=y", "alpha", "alpha", "alpha-linux-gnu", EM_ALPHA, 0},
}};

const Arch* by_kernel_name(const std::string& arch) {
    for (const auto& a : kArches)
        if (arch == a.kernel) return &a;
    return nullptr;
}

}  // namespace

std::string kernel_arch(const fs::path& config) {
    std::ifstream in(config);
    for (std::string line; std::getline(in, line);)
        for (const auto& a : kArches)
            if (line == a.symbol) return a.kernel;
    return "";
}

const std::string& host_kernel_arch() {
    static const std::string arch = [] {
        utsname name{};
        if (::uname(&name) != 0) return std::string();
        const std::string found = arch_of_machine(name.machine);
        return found.empty() ? std::string(name.machine) : found;
    }();
    return arch;
}

std::string cross_arch(const std::string& arch) {
    return arch.empty() || arch == host_kernel_arch() ? "" : arch;
}

std::string cross_tools_prefix(const std::string& arch) {
    const Arch* a = by_kernel_name(arch);
    return a ? std::string(a->triple) + "-" : "";
}

std::string debian_arch(const std::string& arch) {
    const Arch* a = by_kernel_name(arch);
    return a ? a->debian : "";
}

std::string kernel_machine(const std::string& arch) {
    const Arch* a = by_kernel_name(arch);
    return a ? a->machine : arch;
}

std::string arch_of_machine(const std::string& name) {
    if (name == "i386" || name == "i686") return "x86";
    for (const auto& a : kArches)
        if (name == a.machine || name == a.debian || name == a.kernel) return a.kernel;
    return "";
}

std::uint16_t elf_machine(const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) throw Error(file.string() + ": cannot open");
    unsigned char ident[EI_NIDENT + 4] = {};
    in.read(reinterpret_cast<char*>(ident), sizeof ident);
    if (in.gcount() < static_cast<std::streamsize>(sizeof ident) || std::memcmp(ident, ELFMAG, SELFMAG) != 0)
        throw Error(file.string() + ": not an ELF file");
    // e_machine follows e_type, right after e_ident, in both classes; in the file's byte order.
    const unsigned char* m = ident + EI_NIDENT + 2;
    return ident[EI_DATA] == ELFDATA2MSB ? static_cast<std::uint16_t>(m[0] << 8 | m[1])
                                         : static_cast<std::uint16_t>(m[1] << 8 | m[0]);
}

std::string arch_of_elf_machine(std::uint16_t machine) {
    for (const auto& a : kArches)
        if (machine == a.elf || (a.elf32 != 0 && machine == a.elf32)) return a.kernel;
    return "machine " + std::to_string(machine);
}

}  // namespace kbuild

namespace kbuild {

fs::path resolve_in_root(const fs::path& root, const fs::path& path) {
    const fs::path relative = path.lexically_relative(root);
    std::vector<std::string> pending;  // the components still to walk, last first
    for (const auto& part : relative) pending.insert(pending.begin(), part.string());
    fs::path at;  // resolved so far, relative to root
    for (int links = 0; !pending.empty();) {
        const std::string part = pending.back();
        pending.pop_back();
        if (part.empty() || part == ".") continue;
        if (part == "..") {
            at = at.has_parent_path() ? at.parent_path() : fs::path();
            continue;
        }
        std::error_code ec;
        const fs::path next = at / part;
        if (!fs::is_symlink(root / next, ec)) {
            at = next;
            continue;
        }
        if (++links > 40) throw Error((root / path).string() + ": too many levels of symbolic links");
        const fs::path target = fs::read_symlink(root / next, ec);
        if (target.is_absolute()) at.clear();
        std::vector<std::string> parts;
        for (const auto& p : target.relative_path()) parts.push_back(p.string());
        for (auto it = parts.rbegin(); it != parts.rend(); ++it) pending.push_back(*it);
    }
    return root / at;
}

std::string ForeignProgram::why(const fs::path& kernel_dir) const {
    return kernel_dir.filename().string() + ": its " + program + " is a program for " + arch +
           ", which cannot run on this " + host_kernel_arch() +
           " host (the headers' host programs are the target's; give the build host's, as Debian's linux-kbuild-* "
           "of this host's architecture)";
}

std::optional<ForeignProgram> foreign_host_program(const fs::path& root, const fs::path& kernel_dir) {
    for (const char* program : {"scripts/basic/fixdep", "scripts/mod/modpost"}) {
        const fs::path file = resolve_in_root(root, kernel_dir / program);
        std::error_code ec;
        if (!fs::is_regular_file(file, ec)) continue;
        std::uint16_t machine = 0;
        try {
            machine = elf_machine(file);
        } catch (const Error&) {
            continue;  // a script: it runs anywhere
        }
        const std::string arch = arch_of_elf_machine(machine);
        if (arch != host_kernel_arch())
            return ForeignProgram{program, arch, resolve_in_root(root, kernel_dir / "scripts")};
    }
    return std::nullopt;
}

void check_host_programs(const fs::path& root, const fs::path& kernel_dir) {
    if (const auto foreign = foreign_host_program(root, kernel_dir)) throw Error(foreign->why(kernel_dir));
}

std::string arch_release_id(const Release& release) {
    const std::string arch = arch_of_machine(release.arch);
    if (arch.empty() || arch == "x86") return release_id(release);
    return kernel_machine(arch) + "/" + release_id(release);
}

}  // namespace kbuild
