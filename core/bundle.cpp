#include "bundle.h"

#include "archive_handle.h"
#include "plugin_host.h"

#include <kbuild/files.hpp>
#include <kbuild/kernel_tree.hpp>
#include <kbuild/plugin.hpp>

#include <archive_entry.h>

#include <algorithm>
#include <array>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sys/stat.h>
#include <unistd.h>

#ifndef KBUILD_VERSION
#define KBUILD_VERSION "0.0.0"
#endif

namespace fs = std::filesystem;

namespace kbuild {
namespace {

// Every directory Linux has had under arch/: only these are taken for other architectures.
const std::set<std::string> kArchitectures = {
    "alpha", "arc",   "arm",     "arm64",    "avr32", "blackfin", "c6x",        "cris",  "csky",
    "frv",   "h8300", "hexagon", "ia64",     "loongarch", "m32r", "m68k",     "metag", "microblaze",
    "mips",  "mn10300", "nds32", "nios2",    "openrisc", "parisc", "powerpc", "riscv", "s390",
    "score", "sh",    "sparc",   "tile",     "um",    "unicore32", "x86",      "xtensa"};

// The arch/ directory a kernel's .config builds from, "" when it cannot tell (nothing pruned).
std::string source_arch(const fs::path& config) {
    static const std::array<std::pair<const char*, const char*>, 11> symbols = {{
        {"CONFIG_X86=y", "x86"},         {"CONFIG_ARM64=y", "arm64"}, {"CONFIG_ARM=y", "arm"},
        {"CONFIG_PPC=y", "powerpc"},     {"CONFIG_S390=y", "s390"},   {"CONFIG_RISCV=y", "riscv"},
        {"CONFIG_MIPS=y", "mips"},       {"CONFIG_SPARC=y", "sparc"},
        {"CONFIG_LOONGARCH=y", "loongarch"}, {"CONFIG_PARISC=y", "parisc"},
        {"CONFIG_ALPHA=y", "alpha"},
    }};
    std::ifstream in(config);
    for (std::string line; std::getline(in, line);)
        for (const auto& [symbol, arch] : symbols)
            if (line == symbol) return arch;
    return "";
}

// An entry of another architecture: arch/<name> beside an arch/<srcarch> this kernel uses.
bool other_architecture(const fs::path& path, const std::string& srcarch) {
    if (srcarch.empty() || path.parent_path().filename() != "arch") return false;
    const std::string name = path.filename().string();
    if (name == srcarch || kArchitectures.count(name) == 0) return false;
    std::error_code ec;
    return fs::exists(fs::symlink_status(path.parent_path() / srcarch, ec));
}

struct EntryFree {
    void operator()(archive_entry* e) const { archive_entry_free(e); }
};

// One .tgz being written; entries are owned by root, as a package's are.
class TgzWriter {
public:
    explicit TgzWriter(const fs::path& file) : file_(file), archive_(archive_write_new()) {
        if (!archive_) throw Error("libarchive: out of memory");
        archive_write_set_format_pax_restricted(archive_.get());
        archive_write_add_filter_gzip(archive_.get());
        // No timestamp in the gzip header: the same tree gives the same bytes.
        archive_write_set_filter_option(archive_.get(), "gzip", "timestamp", nullptr);
        check(archive_write_open_filename(archive_.get(), file.c_str()));
    }

    void add(const std::string& name, mode_t type, mode_t perm, time_t mtime, const std::string& data,
             const std::string& link = "") {
        std::unique_ptr<archive_entry, EntryFree> entry(archive_entry_new());
        archive_entry_set_pathname(entry.get(), name.c_str());
        archive_entry_set_filetype(entry.get(), type);
        archive_entry_set_perm(entry.get(), perm);
        archive_entry_set_mtime(entry.get(), mtime, 0);
        archive_entry_set_uname(entry.get(), "root");
        archive_entry_set_gname(entry.get(), "root");
        if (type == AE_IFLNK) archive_entry_set_symlink(entry.get(), link.c_str());
        if (type == AE_IFREG) archive_entry_set_size(entry.get(), static_cast<la_int64_t>(data.size()));
        check(archive_write_header(archive_.get(), entry.get()));
        if (type == AE_IFREG && !data.empty() &&
            archive_write_data(archive_.get(), data.data(), data.size()) != static_cast<la_ssize_t>(data.size()))
            check(ARCHIVE_FATAL);
        ++entries_;
    }

    std::int64_t finish() {
        check(archive_write_close(archive_.get()));
        return entries_;
    }

private:
    void check(int status) {
        if (status < ARCHIVE_WARN) throw Error(file_.string() + ": " + archive_message(archive_.get()));
    }

    fs::path file_;
    WriteArchive archive_;
    std::int64_t entries_ = 0;
};

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

std::string trimmed(std::string value) {
    while (!value.empty() && (value.back() == '\n' || value.back() == '\r' || value.back() == ' '))
        value.pop_back();
    return value;
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

// BUNDLE_BUILD_DIR must be a relative path that stays inside the bundle ("./build",
// "./usr/src/linux-headers-6.1.0-56-amd64"); `where` names the bundle in the error.
void check_build_dir(const std::string& where, const std::string& build_dir) {
    const fs::path p = fs::path(build_dir).lexically_normal();
    if (build_dir.empty() || p.is_absolute() || (!p.empty() && *p.begin() == ".."))
        throw Error(where + ": BUNDLE_BUILD_DIR " + build_dir + " leads out of the bundle");
}

// ---- the built-in reader ----

class BundleReader {
public:
    BundleReader(Host& host, const Json&) : host_(host) {}

    ReleaseList batch_packages(const BatchRequest& request) {
        ReleaseList list;
        for (const auto& file : request.files) {
            BundleMeta meta;
            try {
                meta = read_bundle_meta(file);
            } catch (const std::exception& e) {
                list.errors.push_back(e.what());
                continue;
            }
            Release release;
            release.release = meta.uname;
            release.distro = meta.distro;
            release.arch = meta.arch.empty() ? request.arch : meta.arch;
            release.kernelversion = meta.kernelversion;
            release.target = meta.target;
            release.variant = meta.variant;
            Package package{fs::path(file).filename().string()};
            package.path = file;
            release.packages.push_back(package);
            list.releases.push_back(release);
        }
        return list;
    }

    UnpackResult unpack(const UnpackRequest& request) { return host_.extract_all(request); }

    KernelDir get_kernel_dir(const KernelDirRequest& request) {
        const fs::path root = request.root;
        const std::string build_dir = trimmed(read_file((root / "BUNDLE_BUILD_DIR").string()));
        check_build_dir(root.string(), build_dir);
        const fs::path dir = (root / build_dir).lexically_normal();
        if (!fs::is_directory(dir)) throw Error(dir.string() + ": the bundle's build directory is missing");
        return {dir.string()};
    }

    ConfigHash hash_config(const ConfigHashRequest& request) { return config_in_kernel_dir(request); }

private:
    Host& host_;
};

}  // namespace

std::string bundle_file_name(const Release& release) {
    std::string id = release_id(release);
    std::replace(id.begin(), id.end(), '/', '_');
    return "bundle-" + id + ".tgz";
}

BundleStats write_bundle(const fs::path& root, const fs::path& kernel_dir, const Release& release,
                         const std::string& checksum, const fs::path& out_dir) {
    const fs::path build_dir = fs::relative(kernel_dir, root);
    if (build_dir.empty() || *build_dir.begin() == "..")
        throw Error(kernel_dir.string() + ": the kernel directory is not inside " + root.string());
    const std::string srcarch = source_arch(kernel_dir / ".config");

    BundleStats stats;
    stats.file = out_dir / bundle_file_name(release);
    fs::create_directories(out_dir);
    const fs::path temporary = stats.file.string() + ".part-" + std::to_string(::getpid());
    try {
        TgzWriter tgz(temporary);
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
            if (!value.empty()) tgz.add("./" + name, AE_IFREG, 0644, 0, value + "\n");

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
                tgz.add(name, AE_IFDIR, perm, st.st_mtime, "");
            } else if (S_ISLNK(st.st_mode)) {
                fs::path link = fs::read_symlink(path);
                if (link.is_absolute()) {
                    if (const fs::path target = inside_tree(root, link); !target.empty())
                        link = target.lexically_relative(relative.parent_path());
                }
                tgz.add(name, AE_IFLNK, 0777, st.st_mtime, "", link.string());
            } else if (S_ISREG(st.st_mode)) {
                std::string data = read_file(path.string());
                if (relative == build_dir / "Makefile") data = relocated_makefile(root, relative, data);
                tgz.add(name, AE_IFREG, perm, st.st_mtime, data);
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

BundleMeta read_bundle_meta(const fs::path& bundle) {
    const ReadArchive reader = new_reader();
    support_compressions(reader.get());
    archive_read_support_format_tar(reader.get());
    const std::string where = bundle.string() + ": not a kernel bundle: ";
    if (archive_read_open_filename(reader.get(), bundle.c_str(), 1 << 16) != ARCHIVE_OK)
        throw Error(where + archive_message(reader.get()));

    std::map<std::string, std::string> meta;
    archive_entry* entry = nullptr;
    int status;
    while ((status = archive_read_next_header(reader.get(), &entry)) == ARCHIVE_OK || status == ARCHIVE_WARN) {
        std::string name = archive_entry_pathname(entry);
        if (name.rfind("./", 0) == 0) name.erase(0, 2);
        const bool is_meta = name.rfind("BUNDLE_", 0) == 0 && name.find('/') == std::string::npos;
        if (!is_meta) {
            // Meta files sit together (kbuild writes them first): past them, the rest is tree.
            if (meta.count("BUNDLE_UNAME") && meta.count("BUNDLE_BUILD_DIR")) break;
            continue;
        }
        std::string value(4096, '\0');
        const la_ssize_t n = archive_read_data(reader.get(), value.data(), value.size());
        if (n < 0) throw Error(where + name + ": " + archive_message(reader.get()));
        value.resize(static_cast<size_t>(n));
        meta[name] = trimmed(value);
    }
    if (status == ARCHIVE_FATAL || status == ARCHIVE_RETRY)
        throw Error(where + archive_message(reader.get()));

    auto get = [&](const char* name) {
        const auto it = meta.find(name);
        return it == meta.end() ? std::string() : it->second;
    };
    BundleMeta m;
    m.build_dir = get("BUNDLE_BUILD_DIR");
    m.checksum = get("BUNDLE_CHECKSUM");
    m.distro = get("BUNDLE_DISTRO");
    m.uname = get("BUNDLE_UNAME");
    m.version = get("BUNDLE_VERSION");
    m.major = get("BUNDLE_MAJOR");
    m.minor = get("BUNDLE_MINOR");
    m.arch = get("BUNDLE_ARCH");
    m.kernelversion = get("BUNDLE_KERNELVERSION");
    m.target = get("BUNDLE_TARGET");
    m.variant = get("BUNDLE_VARIANT");
    for (const auto& [value, name] : {std::pair{&m.uname, "BUNDLE_UNAME"}, {&m.build_dir, "BUNDLE_BUILD_DIR"},
                                      {&m.distro, "BUNDLE_DISTRO"}})
        if (value->empty()) throw Error(where + "no " + name);
    if (m.uname.find('/') != std::string::npos || m.uname.find_first_of(" \t") != std::string::npos)
        throw Error(bundle.string() + ": BUNDLE_UNAME '" + m.uname + "' is not a kernel release");
    check_build_dir(bundle.string(), m.build_dir);
    return m;
}

const Plugin& bundle_plugin() {
    static const char* const distros[] = {"bundle", nullptr};
    static const kb_plugin_api api =
        detail::make_table<BundleReader>("bundle", KBUILD_VERSION, "debian", distros);
    static const Plugin plugin("(built in)", nullptr, api, {"bundle"});
    return plugin;
}

}  // namespace kbuild
