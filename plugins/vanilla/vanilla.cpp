// kernel.org's kernels, shipped as source: <mirror>/v<major>.x/linux-<version>.tar.xz, checked
// against the sha256 that directory's clearsigned sha256sums.asc lists (the distro's keyring:
// --keyring, or the config file's), built with the config the user gives (--kernel-config).
// Each release asked for (`--option releases=6.1.158,5.5.2-arch1-1`) is the source of its
// leading version; the host prepares the tree with the config and a LOCALVERSION that makes
// the release exactly the one asked for (ABI 1.7).
#include <kbuild/options.hpp>
#include <kbuild/plugin.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <sstream>

namespace fs = std::filesystem;

namespace {

// "5.5.2-arch1-1" -> "5.5.2"; "" when the release does not start with a version.
std::string source_version_of(const std::string& release) {
    static const std::regex version(R"(^(\d+\.\d+(\.\d+)?))");
    std::smatch match;
    return std::regex_search(release, match, version) ? match[1].str() : std::string();
}

// kernel.org's directory of a version: v6.x for 6.1.158, v2.6 for 2.6.32.
std::string series_of(const std::string& version) {
    const std::string major = version.substr(0, version.find('.'));
    if (major == "2") return "v" + version.substr(0, version.find('.', 2));
    return "v" + major + ".x";
}

// The config a release is built with: a file on this host, or a URL.
kbuild::Package config_package(const std::string& value) {
    kbuild::Package config;
    config.name = "config";
    if (value.rfind("http://", 0) == 0 || value.rfind("https://", 0) == 0) {
        config.url = value;
        return config;
    }
    if (!fs::is_regular_file(value)) throw kbuild::Error("config " + value + ": no such file");
    config.path = fs::absolute(value).string();
    return config;
}

class Vanilla {
public:
    Vanilla(kbuild::Host& host, const kbuild::Json&) : host_(host) {}

    kbuild::Description describe() {
        return {
            {{"releases", "comma-separated kernel releases (uname -r) to build: 6.1.158,5.5.2-arch1-1", ""},
             {"config", "the kernels' config: a file or a URL (kbuild --kernel-config also takes base64:DATA)", ""}},
            {},
            {}};
    }

    kbuild::ReleaseList crawl(const kbuild::CrawlRequest& request) {
        if (request.mirrors.empty())
            throw kbuild::Error(
                "no mirror to crawl (give --mirror URL of kernel.org's layout, e.g. "
                "https://cdn.kernel.org/pub/linux/kernel)");
        const kbuild::Package config = config_of(request.options);
        kbuild::ReleaseList list;
        std::map<std::string, Sums> sums;  // series -> its sha256sums, read once
        for (const auto& release : releases_of(request.options)) {
            kbuild::Release r = source_release(release, request.arch, config);
            const std::string version = source_version_of(release);
            const std::string series = series_of(version);
            auto it = sums.find(series);
            if (it == sums.end()) it = sums.emplace(series, read_sums(request.mirrors.front(), series)).first;
            if (!it->second.error.empty()) {
                r.unavailable = it->second.error;
            } else if (const auto tarball = it->second.tarball(version)) {
                r.packages.push_back(*tarball);
            } else {
                r.unavailable = "no linux-" + version + ".tar.xz or .tar.gz in " + it->second.url;
            }
            list.releases.push_back(r);
        }
        return list;
    }

    // Local tarballs (linux-<version>.tar.*): each the source of the release asked for with its
    // version, else of the version itself.
    kbuild::ReleaseList batch_packages(const kbuild::BatchRequest& request) {
        const kbuild::Package config = config_of(request.options);
        std::map<std::string, std::string> asked;  // version -> release
        for (const auto& release : kbuild::split_list(kbuild::option(request.options, "releases", "")))
            asked[source_version_of(release)] = release;
        static const std::regex tarball(R"(^linux-(\d+\.\d+(\.\d+)?)\.tar\.(xz|gz|bz2)$)");
        kbuild::ReleaseList list;
        for (const auto& file : request.files) {
            const std::string name = fs::path(file).filename().string();
            std::smatch match;
            if (!std::regex_match(name, match, tarball)) {
                list.unclaimed.push_back({file, "not a kernel source tarball (linux-<version>.tar.xz)"});
                continue;
            }
            const std::string version = match[1].str();
            const auto it = asked.find(version);
            kbuild::Release r = source_release(it == asked.end() ? version : it->second, request.arch, config);
            kbuild::Package source;
            source.name = name;
            (request.names_only ? source.url : source.path) = file;
            r.packages.push_back(source);
            list.releases.push_back(r);
        }
        return list;
    }

    // The tarball's one top directory (linux-6.1.158/).
    kbuild::KernelDir get_kernel_dir(const kbuild::KernelDirRequest& request) {
        for (const auto& entry : fs::directory_iterator(request.root))
            if (entry.is_directory() && fs::is_regular_file(entry.path() / "Makefile"))
                return {entry.path().string(), false};
        throw kbuild::Error(request.root + ": the source holds no kernel tree (a directory with a Makefile)");
    }

private:
    struct Sums {
        std::string url, error;
        std::map<std::string, std::string> sha256;  // file name -> sha256
        std::optional<kbuild::Package> tarball(const std::string& version) const {
            for (const char* ext : {".tar.xz", ".tar.gz"}) {
                const std::string name = "linux-" + version + ext;
                const auto it = sha256.find(name);
                if (it == sha256.end()) continue;
                kbuild::Package p;
                p.name = name;
                p.url = url.substr(0, url.rfind('/') + 1) + name;
                p.sha256 = it->second;
                return p;
            }
            return std::nullopt;
        }
    };

    // <mirror>/<series>/sha256sums.asc, its signature checked; what cannot be read is the
    // error of every release of the series.
    Sums read_sums(std::string mirror, const std::string& series) const {
        while (!mirror.empty() && mirror.back() == '/') mirror.pop_back();
        Sums sums;
        sums.url = mirror + "/" + series + "/sha256sums.asc";
        try {
            kbuild::Package file;
            file.url = sums.url;
            kbuild::VerifyRequest check;
            check.file = host_.fetch(file).path;
            check.url = sums.url;
            check.inline_signed = true;
            std::ifstream in(host_.verify(check).path);
            static const std::regex line(R"(^([0-9a-f]{64})\s+(\S+)\s*$)");
            std::smatch match;
            for (std::string text; std::getline(in, text);)
                if (std::regex_match(text, match, line)) sums.sha256[match[2].str()] = match[1].str();
        } catch (const std::exception& e) {
            sums.error = e.what();
        }
        return sums;
    }

    static std::vector<std::string> releases_of(const kbuild::Options& options) {
        auto releases = kbuild::split_list(kbuild::option(options, "releases", ""));
        if (releases.empty()) throw kbuild::Error("name the kernels to build: --option releases=6.1.158[,...]");
        return releases;
    }

    static kbuild::Package config_of(const kbuild::Options& options) {
        const std::string value = kbuild::option(options, "config", "");
        if (value.empty())
            throw kbuild::Error("a source kernel needs its config: --kernel-config FILE|URL|base64:DATA");
        return config_package(value);
    }

    static kbuild::Release source_release(const std::string& release, const std::string& arch,
                                          const kbuild::Package& config) {
        if (source_version_of(release).empty())
            throw kbuild::Error("release " + release + " does not start with a kernel version (6.1.158)");
        kbuild::Release r;
        r.release = release;
        r.kernelversion = "1";
        r.distro = "vanilla";
        r.arch = arch;
        r.config = config;
        return r;
    }

    kbuild::Host& host_;
};

}  // namespace

KBUILD_PLUGIN(Vanilla, "vanilla", "0.1.0", "", "vanilla")
