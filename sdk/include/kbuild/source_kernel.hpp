// Kernels shipped as source (ABI 1.7, Release::config): what the plugins that find them share.
// kernel.org's layout (<mirror>/v<major>.x/linux-<version>.tar.xz beside a clearsigned
// sha256sums.asc), source tarballs' names, a config the user gives, and the kernel tree in an
// unpacked source. Header-only: it needs nothing the SDK library does not already link.
#pragma once

#include <kbuild/plugin.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <string>
#include <vector>

namespace kbuild::source {

// "5.5.2-arch1-1" -> "5.5.2"; "" when the text does not start with a kernel version.
inline std::string leading_version(const std::string& release) {
    static const std::regex version(R"(^(\d+\.\d+(\.\d+)?))");
    std::smatch match;
    return std::regex_search(release, match, version) ? match[1].str() : std::string();
}

// kernel.org's directory of a version: v6.x for 6.1.158, v2.6 for 2.6.32.
inline std::string kernel_org_series(const std::string& version) {
    const std::string major = version.substr(0, version.find('.'));
    if (major == "2") return "v" + version.substr(0, version.find('.', 2));
    return "v" + major + ".x";
}

// The version a source tarball's file name holds: linux-6.1.158.tar.xz (kernel.org, any of
// .tar.xz, .tar.gz, .tar.bz2) -> 6.1.158; "" for any other name.
inline std::string tarball_version(const std::string& file_name) {
    static const std::regex tarball(R"(^linux-(\d+\.\d+(\.\d+)?)\.tar\.(xz|gz|bz2)$)");
    std::smatch match;
    return std::regex_match(file_name, match, tarball) ? match[1].str() : std::string();
}

// The last component of a file's path or URL, without a URL's query: ".../linux_defconfig?x=1"
// -> "linux_defconfig".
inline std::string file_name_of(const std::string& where) {
    const std::string path = where.substr(0, where.find('?'));
    return path.substr(path.rfind('/') + 1);
}

// A file a batch names, as a package: its URL when the batch has names only (a list of URLs),
// else its path; named by its file name.
inline Package batch_package(const BatchRequest& request, const std::string& file) {
    Package package;
    package.name = file_name_of(file);
    (request.names_only ? package.url : package.path) = file;
    return package;
}

inline bool is_url(const std::string& text) {
    return text.rfind("http://", 0) == 0 || text.rfind("https://", 0) == 0;
}

// The config a release is built with: a file on this host (made absolute, so the host finds it
// whatever its working directory), or a URL.
inline Package config_package(const std::string& value) {
    Package config;
    config.name = "config";
    if (is_url(value)) {
        config.url = value;
        return config;
    }
    if (!std::filesystem::is_regular_file(value)) throw Error("config " + value + ": no such file");
    config.path = std::filesystem::absolute(value).string();
    return config;
}

// The kernel tree of an unpacked source: `dir` itself when it holds the top Makefile (COS's
// tarball has no top directory), else its one subdirectory that does (linux-6.1.158/).
inline std::string kernel_tree_in(const std::string& dir) {
    namespace fs = std::filesystem;
    if (fs::is_regular_file(fs::path(dir) / "Makefile") && fs::is_regular_file(fs::path(dir) / "Kconfig")) return dir;
    std::vector<std::string> trees;
    for (const auto& entry : fs::directory_iterator(dir))
        if (entry.is_directory() && fs::is_regular_file(entry.path() / "Makefile"))
            trees.push_back(entry.path().string());
    if (trees.size() == 1) return trees.front();
    if (trees.empty()) throw Error(dir + ": the source holds no kernel tree (a directory with a Makefile)");
    throw Error(dir + ": the source holds " + std::to_string(trees.size()) + " directories with a Makefile, not one");
}

// One directory of kernel.org's layout as its signed sums describe it: what cannot be read (the
// sums missing, their signature refused) is `error`, the reason of every release it would serve.
struct KernelOrgDirectory {
    std::string url;  // of its sha256sums.asc
    std::string error;
    std::map<std::string, std::string> sha256;  // file name -> sha256

    // The version's tarball (.tar.xz, else .tar.gz), with the sha256 it is fetched against.
    std::optional<Package> tarball(const std::string& version) const {
        for (const char* ext : {".tar.xz", ".tar.gz"}) {
            const std::string name = "linux-" + version + ext;
            const auto it = sha256.find(name);
            if (it == sha256.end()) continue;
            Package p;
            p.name = name;
            p.url = url.substr(0, url.rfind('/') + 1) + name;
            p.sha256 = it->second;
            return p;
        }
        return std::nullopt;
    }

    // The tarball of `version`, or why there is none: the release's packages or unavailable.
    void serve(const std::string& version, Release& release) const {
        if (!error.empty())
            release.unavailable = error;
        else if (const auto p = tarball(version))
            release.packages.push_back(*p);
        else
            release.unavailable = "no linux-" + version + ".tar.xz or .tar.gz in " + url;
    }
};

// <mirror>/<series>/sha256sums.asc, fetched and its clearsigned signature checked through the
// host's verify (the distro's keyring).
inline KernelOrgDirectory read_kernel_org_directory(const Host& host, std::string mirror, const std::string& series) {
    while (!mirror.empty() && mirror.back() == '/') mirror.pop_back();
    KernelOrgDirectory dir;
    dir.url = mirror + "/" + series + "/sha256sums.asc";
    try {
        Package file;
        file.url = dir.url;
        VerifyRequest check;
        check.file = host.fetch(file).path;
        check.url = dir.url;
        check.inline_signed = true;
        std::ifstream in(host.verify(check).path);
        static const std::regex line(R"(^([0-9a-f]{64})\s+(\S+)\s*$)");
        std::smatch match;
        for (std::string text; std::getline(in, text);)
            if (std::regex_match(text, match, line)) dir.sha256[match[2].str()] = match[1].str();
    } catch (const std::exception& e) {
        dir.error = e.what();
    }
    return dir;
}

// The directories of kernel.org's layout a crawl reads, each once.
class KernelOrgMirror {
public:
    KernelOrgMirror(const Host& host, std::string mirror) : host_(host), mirror_(std::move(mirror)) {}

    const KernelOrgDirectory& directory_of(const std::string& version) {
        const std::string series = kernel_org_series(version);
        auto it = read_.find(series);
        if (it == read_.end()) it = read_.emplace(series, read_kernel_org_directory(host_, mirror_, series)).first;
        return it->second;
    }

private:
    const Host& host_;
    std::string mirror_;
    std::map<std::string, KernelOrgDirectory> read_;
};

// A crawl's kernel.org mirror: the user's --mirror; none is an error saying what to give.
inline std::string kernel_org_mirror(const CrawlRequest& request) {
    if (request.mirrors.empty())
        throw Error(
            "no mirror to crawl (give --mirror URL of kernel.org's layout, e.g. "
            "https://cdn.kernel.org/pub/linux/kernel)");
    return request.mirrors.front();
}

}  // namespace kbuild::source
