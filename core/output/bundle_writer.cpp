#include "output/bundle_writer.h"

#include "kernel/kernel_arch.h"
#include "unpack/tar_writer.h"

#include <kbuild/files.hpp>

#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <array>
#include <fstream>
#include <set>

namespace fs = std::filesystem;

namespace kbuild {
namespace {

// Every directory Linux has had under arch/: only these are taken for other architectures.
const std::set<std::string> kArchitectures = {
    "alpha", "arc",     "arm",     "arm64", "avr32",     "blackfin",  "c6x",     "cris",  "csky",
    "frv",   "h8300",   "hexagon", "ia64",  "loongarch", "m32r",      "m68k",    "metag", "microblaze",
    "mips",  "mn10300", "nds32",   "nios2", "openrisc",  "parisc",    "powerpc", "riscv", "s390",
    "score", "sh",      "sparc",   "tile",  "um",        "unicore32", "x86",     "xtensa"};

// An entry of another architecture: arch/<name> beside an arch/<srcarch> this kernel uses.
bool other_architecture(const fs::path& path, const std::string& srcarch) {
    if (srcarch.empty() || path.parent_path().filename() != "arch") return false;
    const std::string name = path.filename().string();
    if (name == srcarch || kArchitectures.count(name) == 0) return false;
    std::error_code ec;
    return fs::exists(fs::symlink_status(path.parent_path() / srcarch, ec));
}

// An entry owned by root, as a package's are.
TarEntry root_entry(const std::string& name, mode_t mode, time_t mtime, const std::string& link = "") {
    TarEntry entry;
    entry.name = name;
    entry.mode = mode;
    entry.mtime = mtime;
    entry.owner = entry.group = "root";
    entry.symlink = link;
    return entry;
}

// An absolute path inside the tree, as the tree's own relative path; empty when it is not in it.
fs::path inside_tree(const fs::path& root, const fs::path& absolute) {
    const fs::path relative = absolute.lexically_normal().relative_path();
    if (relative.empty() || *relative.begin() == "..") return {};
    std::error_code ec;
    return fs::exists(fs::symlink_status(root / relative, ec)) ? relative : fs::path{};
}

// A top Makefile's `include /usr/src/<other>/Makefile` (Debian's) as a path relative to the
// Makefile itself, so the tree builds where it is extracted.
std::string relocated_makefile(const fs::path& root, const fs::path& makefile_in_tree, const std::string& text) {
    std::string out;
    size_t start = 0;
    while (start < text.size()) {
        size_t end = text.find('\n', start);
        if (end == std::string::npos) end = text.size();
        std::string line = text.substr(start, end - start);
        const std::string prefix = "include /";
        if (line.rfind(prefix, 0) == 0) {
            const fs::path target = inside_tree(root, line.substr(prefix.size() - 1));
            if (!target.empty())
                line = "include $(dir $(lastword $(MAKEFILE_LIST)))" +
                       target.lexically_relative(makefile_in_tree.parent_path()).string();
        }
        out += line;
        if (end < text.size()) out += '\n';
        start = end + 1;
    }
    return out;
}

// "6.1.0-56-amd64" -> {"6", "1", "0"}; missing numbers are "0".
std::array<std::string, 3> version_numbers(const std::string& uname) {
    std::array<std::string, 3> numbers{"0", "0", "0"};
    size_t at = 0;
    for (auto& number : numbers) {
        const size_t end = uname.find_first_not_of("0123456789", at);
        if (end == at) break;
        number = uname.substr(at, end == std::string::npos ? std::string::npos : end - at);
        if (end == std::string::npos || uname[end] != '.') break;
        at = end + 1;
    }
    return numbers;
}

}  // namespace

BundleStats write_bundle(const fs::path& root, const fs::path& kernel_dir, const Release& release,
                         const std::string& checksum, const fs::path& out_dir) {
    const fs::path build_dir = fs::relative(kernel_dir, root);
    if (build_dir.empty() || *build_dir.begin() == "..")
        throw Error(kernel_dir.string() + ": the kernel directory is not inside " + root.string());
    const std::string srcarch = kernel_arch(kernel_dir / ".config");

    BundleStats stats;
    stats.file = out_dir / bundle_file_name(release);
    fs::create_directories(out_dir);
    const fs::path temporary = stats.file.string() + ".part-" + std::to_string(::getpid());
    try {
        TarWriter tgz(temporary, TarWriter::Compression::gzip);
        const auto numbers = version_numbers(release.release);
        const std::vector<std::pair<std::string, std::string>> meta = {
            {"BUNDLE_BUILD_DIR", "./" + build_dir.string()},
            {"BUNDLE_CHECKSUM", checksum},
            {"BUNDLE_DISTRO", release.distro},
            {"BUNDLE_UNAME", release.release},
            {"BUNDLE_VERSION", numbers[0]},
            {"BUNDLE_MAJOR", numbers[1]},
            {"BUNDLE_MINOR", numbers[2]},
            {"BUNDLE_ARCH", release.arch},
            {"BUNDLE_KERNELVERSION", release.kernelversion},
            {"BUNDLE_TARGET", release.target},
            {"BUNDLE_VARIANT", release.variant},
        };
        // Meta files carry no time: the same release gives the same bytes.
        for (const auto& [name, value] : meta)
            if (!value.empty()) tgz.add(root_entry("./" + name, S_IFREG | 0644, 0), value + "\n");

        // The tree in sorted order, other architectures left out.
        std::vector<fs::path> paths;
        for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it) {
            if (other_architecture(it->path(), srcarch)) {
                ++stats.pruned;
                it.disable_recursion_pending();
                continue;
            }
            paths.push_back(it->path());
        }
        std::sort(paths.begin(), paths.end());
        for (const auto& path : paths) {
            const fs::path relative = path.lexically_relative(root);
            struct stat st {};
            if (::lstat(path.c_str(), &st) != 0) throw Error(path.string() + ": cannot stat");
            const std::string name = "./" + relative.string();
            const mode_t perm = st.st_mode & 07777;
            if (S_ISDIR(st.st_mode)) {
                tgz.add(root_entry(name, S_IFDIR | perm, st.st_mtime));
            } else if (S_ISLNK(st.st_mode)) {
                fs::path link = fs::read_symlink(path);
                if (link.is_absolute()) {
                    if (const fs::path target = inside_tree(root, link); !target.empty())
                        link = target.lexically_relative(relative.parent_path());
                }
                tgz.add(root_entry(name, S_IFLNK | 0777, st.st_mtime, link.string()));
            } else if (S_ISREG(st.st_mode)) {
                std::string data = read_file(path.string());
                if (relative == build_dir / "Makefile") data = relocated_makefile(root, relative, data);
                tgz.add(root_entry(name, S_IFREG | perm, st.st_mtime), data);
            }
        }
        stats.entries = tgz.finish();
        fs::rename(temporary, stats.file);
    } catch (...) {
        std::error_code ec;
        fs::remove(temporary, ec);
        throw;
    }
    stats.bytes = static_cast<std::int64_t>(fs::file_size(stats.file));
    return stats;
}

}  // namespace kbuild
