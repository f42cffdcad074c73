#include "plugin/bundle.h"

#include "kernel/kernel_arch.h"
#include "plugin/plugin_host.h"
#include "unpack/archive_handle.h"

#include <kbuild/files.hpp>
#include <kbuild/kernel_tree.hpp>
#include <kbuild/plugin.hpp>

#include <archive_entry.h>

#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <array>
#include <fstream>
#include <map>
#include <memory>
#include <set>

#ifndef KBUILD_VERSION
#define KBUILD_VERSION "0.0.0"
#endif

namespace fs = std::filesystem;

namespace kbuild {
namespace {

std::string trimmed(std::string value) {
    while (!value.empty() && (value.back() == '\n' || value.back() == '\r' || value.back() == ' ')) value.pop_back();
    return value;
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
    BundleReader(Host&, const Json&) {}

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

    KernelDir get_kernel_dir(const KernelDirRequest& request) {
        const fs::path root = request.root;
        const std::string build_dir = trimmed(read_file((root / "BUNDLE_BUILD_DIR").string()));
        check_build_dir(root.string(), build_dir);
        const fs::path dir = (root / build_dir).lexically_normal();
        if (!fs::is_directory(dir)) throw Error(dir.string() + ": the bundle's build directory is missing");
        // A bundle's tree builds where it lies (its absolute paths were made relative).
        return {dir.string(), /*self_contained=*/true};
    }
    // unpack (extract all) and hash_config (the .config's MD5) are the SDK's defaults.
};

}  // namespace

std::string bundle_file_name(const Release& release) {
    std::string id = arch_release_id(release);
    std::replace(id.begin(), id.end(), '/', '_');
    return "bundle-" + id + ".tgz";
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
    if (status == ARCHIVE_FATAL || status == ARCHIVE_RETRY) throw Error(where + archive_message(reader.get()));

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
    for (const auto& [value, name] :
         {std::pair{&m.uname, "BUNDLE_UNAME"}, {&m.build_dir, "BUNDLE_BUILD_DIR"}, {&m.distro, "BUNDLE_DISTRO"}})
        if (value->empty()) throw Error(where + "no " + name);
    if (m.uname.find('/') != std::string::npos || m.uname.find_first_of(" \t") != std::string::npos)
        throw Error(bundle.string() + ": BUNDLE_UNAME '" + m.uname + "' is not a kernel release");
    check_build_dir(bundle.string(), m.build_dir);
    return m;
}

const Plugin& bundle_plugin() {
    static const char* const distros[] = {"bundle", nullptr};
    // No builder family: a bundle may hold any distro's kernel, and BUNDLE_DISTRO is not one
    // the host could map to a family without naming distros; the kernel's compiler alone picks
    // the builder image (compiler.h), as it does among images of any family.
    static const kb_plugin_api api = detail::make_table<BundleReader>("bundle", KBUILD_VERSION, "", distros);
    static const Plugin plugin("(built in)", nullptr, api, {"bundle"});
    return plugin;
}

}  // namespace kbuild
